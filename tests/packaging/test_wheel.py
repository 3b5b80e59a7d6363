"""The package as users install it: the built wheel in a bare venv, a minimal project on it.

The wheel is built from a copy of the checkout (``pip wheel --no-deps``, so only what
pyproject.toml declares goes in), installed into a fresh venv with nothing but its declared
dependencies, then with the ``redis`` and ``daphne`` extras. Each time ``site/probe.py``
imports every module of the installed package and ``manage.py check`` runs on the minimal
project in ``site/``; with the extras, daphne serves one command of it. pip downloads through
its cache, so only the first run fetches.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from tests.live import free_port, wait_for_port
from tests.require import ROOT, missing, require

pytestmark = pytest.mark.e2e

SITE = Path(__file__).resolve().parent / "site"
#: What the wheel must carry besides the modules (package data).
DATA = (
    "wscommands/py.typed",
    "wscommands/static/wscommands/wscommands.js",
    "wscommands/static/wscommands/wscommands.classic.js",
    "wscommands/static/wscommands/wscommands.d.ts",
    "wscommands/templates/wscommands/ops.html",
)
#: The only module that needs an extra to import: channels.testing imports daphne.
NEEDS_DAPHNE = "wscommands.testing"
PIP_TIMEOUT = 300


#: pip's words when it cannot reach an index (PyPI) and its cache lacks the file.
OFFLINE = ("No matching distribution found", "Could not find a version", "NewConnectionError")


def _failed(args: tuple[str | Path, ...], result: subprocess.CompletedProcess) -> str:
    return (
        f"{' '.join(map(str, args))} exited {result.returncode}:\n"
        f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )


def _run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT,
    )
    if result.returncode:
        pytest.fail(_failed(args, result), pytrace=False)
    return result.stdout


def _pip(*args: str | Path) -> None:
    """Run pip; without network and cache, skip (fail in CI) rather than fail."""
    args = (sys.executable, "-m", "pip", "--disable-pip-version-check", *args)
    result = subprocess.run(
        [str(arg) for arg in args], capture_output=True, text=True, timeout=PIP_TIMEOUT
    )
    if result.returncode and any(words in result.stderr for words in OFFLINE):
        missing("pip could not download (PyPI unreachable, not in pip's cache):\n" + result.stderr)
    if result.returncode:
        pytest.fail(_failed(args, result), pytrace=False)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of the checkout (the build writes next to its sources)."""
    if importlib.util.find_spec("pip") is None:
        missing("pip is not installed in this venv: python -m ensurepip")
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "wscommands", src / "wscommands", ignore=shutil.ignore_patterns("__pycache__")
    )
    dist = tmp_path_factory.mktemp("dist")
    _pip("wheel", "--no-deps", "--quiet", "--wheel-dir", dist, src)
    (built,) = dist.glob("wscommands-*.whl")
    return built


def _venv(home: Path, requirement: str) -> Path:
    """A fresh venv (no pip of its own) with ``requirement`` and its dependencies only."""
    venv.create(home, with_pip=False)
    python = home / "bin" / "python"
    _pip("--python", python, "install", "--quiet", requirement)
    return python


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """The Python of a venv with the wheel and its declared dependencies only."""
    return _venv(tmp_path_factory.mktemp("bare"), str(wheel))


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """The Python of a venv with the wheel and its ``redis`` and ``daphne`` extras."""
    return _venv(tmp_path_factory.mktemp("full"), f"{wheel}[redis,daphne]")


def _site(tmp_path: Path) -> Path:
    project = tmp_path / "site"
    shutil.copytree(SITE, project, ignore=shutil.ignore_patterns("__pycache__"))
    return project


def _env(extras: str = "", redis_url: str | None = None) -> dict[str, str]:
    # A user's shell, not this suite's: no PYTHONPATH, DJANGO_SETTINGS_MODULE or WSCOMMANDS_*.
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}
    env["SITE_EXTRAS"] = extras
    if redis_url:
        env["SITE_REDIS_URL"] = redis_url
    return env


def _probe(python: Path, project: Path, env: dict[str, str]) -> dict[str, Any]:
    return json.loads(_run(python, "probe.py", cwd=project, env=env))


def _check(python: Path, project: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(python), "manage.py", "check"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT,
    )


def test_the_wheel_carries_the_types_marker_the_client_and_the_template(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert [name for name in DATA if name not in names] == []
    assert not [name for name in names if "__pycache__" in name or name.startswith("tests/")]


def test_the_bare_wheel_imports_every_module_and_checks_clean(bare: Path, tmp_path: Path) -> None:
    project = _site(tmp_path)
    report = _probe(bare, project, _env())
    # The venv really is bare: none of the extras came in through a dependency.
    assert not any(report["installed"].values()), report["installed"]
    assert not report["location"].startswith(str(ROOT)), report["location"]
    assert len(report["imported"]) > 50, report["imported"]
    # The one module that needs daphne says how to get it.
    assert list(report["failed"]) == [NEEDS_DAPHNE], report["failed"]
    assert report["failed"][NEEDS_DAPHNE].startswith("ImportError: ")
    assert 'pip install "wscommands[daphne]"' in report["failed"][NEEDS_DAPHNE]
    # Package data is found where Django looks for it.
    assert report["template"].endswith("wscommands/templates/wscommands/ops.html")
    assert report["static"].endswith("wscommands/static/wscommands/wscommands.js")
    # Metrics are on by default but prometheus-client is missing: /metrics says what to add.
    status, body = report["metrics"]
    assert status == 404 and 'pip install "wscommands[metrics]"' in body, report["metrics"]

    # A minimal project starts without a word (no warning for the absent optional extras).
    result = _check(bare, project, _env())
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert result.stdout == "System check identified no issues (0 silenced).\n"


def test_the_redis_backend_without_its_extra_is_refused_at_check_time(
    bare: Path, tmp_path: Path
) -> None:
    result = _check(bare, _site(tmp_path), _env(redis_url="redis://127.0.0.1:6379/9"))
    assert result.returncode == 1
    # Both the backend and the channels-redis layer are refused, naming the extra.
    assert result.stderr.count("(wscommands.E021)") == 2, result.stderr
    assert 'pip install "wscommands[redis]"' in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_with_the_redis_and_daphne_extras_every_module_imports_and_checks_clean(
    full: Path, tmp_path: Path
) -> None:
    project = _site(tmp_path)
    # Redis settings: check and imports do not connect.
    env = _env("redis,daphne", "redis://127.0.0.1:6379/9")
    report = _probe(full, project, env)
    assert report["failed"] == {}
    installed = report["installed"]
    assert installed["daphne"] and installed["redis"] and installed["channels_redis"], installed
    result = _check(full, project, env)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr


def test_daphne_from_the_extra_serves_a_command_on_the_redis_backend(
    full: Path, tmp_path: Path
) -> None:
    project = _site(tmp_path)
    env = _env("redis,daphne", require("redis"))
    port = free_port()
    daphne = [str(full.parent / "daphne"), "-b", "127.0.0.1", "-p", str(port)]
    server = subprocess.Popen(
        [*daphne, "minisite.asgi:application"],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    replies = []
    try:
        wait_for_port(port, server)
        with connect(f"ws://127.0.0.1:{port}/ws/", open_timeout=30) as ws:
            for request_id in (1, 2):
                ws.send(json.dumps({"greet": {"name": "ann"}, "request_id": request_id}))
                replies.append(json.loads(ws.recv(timeout=30)))
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert [reply["request_id"] for reply in replies] == [1, 2], (replies, stderr)
    # The count lives in Redis (global state): the second greeting finds the first's.
    first, second = (int(reply["greet"].removeprefix("hello ann #")) for reply in replies)
    assert second == first + 1, (replies, stderr)
