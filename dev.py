#!/usr/bin/env python3
"""Set-up and the everyday commands, with nothing but python3 on the machine.

    python3 dev.py run     # virtualenv + dependencies + migrations, then daphne on :8000 (DEBUG)
    python3 dev.py test    # virtualenv + dependencies, then every stage: lint, node, pytest suites;
                           # all run even if one fails, then each one's time and result
    python3 dev.py manage createsuperuser   # any manage.py command, in development mode

The virtualenv lives in .venv and is re-synced whenever a requirements file changes; the
development Node tools (package.json: tsc, the AsyncAPI JSON Schemas) live in node_modules and
are re-installed with `npm ci` whenever package-lock.json changes (as is the benchmark's Node.js
Socket.IO anchor, bench/anchors/node).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
import venv
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("WSCOMMANDS_VENV", ROOT / ".venv"))
BIN = VENV / "bin"
PYTHON = BIN / "python"
REQUIREMENTS = ["requirements.txt", "requirements-dev.txt"]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
#: Where `npm ci` installs: the development tools (package.json), and the benchmark's Node.js
#: Socket.IO anchor, which tests/test_bench_smoke.py runs.
NODE_PROJECTS = (ROOT, ROOT / "bench" / "anchors" / "node")


def sh(*cmd: str | Path, env: dict[str, str] | None = None) -> None:
    """Run a command in the repository, echoing it; exit with its code if it fails."""
    print("+", " ".join(str(c) for c in cmd), flush=True)
    code = subprocess.call([str(c) for c in cmd], cwd=ROOT, env=env)
    if code:
        sys.exit(code)


def install() -> None:
    """Create .venv and install the pinned requirements when they changed."""
    digest = hashlib.sha256(b"".join((ROOT / r).read_bytes() for r in REQUIREMENTS)).hexdigest()
    stamp = VENV / ".requirements.sha256"
    if stamp.exists() and stamp.read_text() == digest and PYTHON.exists():
        return
    if not PYTHON.exists():
        print(f"+ creating virtualenv {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    sh(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    sh(PYTHON, "-m", "pip", "install", "--quiet", "-r", "requirements-dev.txt")
    stamp.write_text(digest)


def install_node() -> None:
    """Install each of NODE_PROJECTS' package-lock.json into its node_modules when it changed.

    Without npm the tests that need them (tsc, the AsyncAPI schema, the benchmark smoke test's
    Node anchor) skip outside CI; CI (.ci/run) installs Node and npm first.
    """
    npm = shutil.which("npm")
    if npm is None:
        if IN_CI:  # CI must run every test: .ci/run installs Node and npm first
            sys.exit("npm is not installed: CI needs it (apt-get install nodejs npm)")
        print(
            "+ npm not found: skipping node_modules (tsc and AsyncAPI tests will skip, and "
            "the benchmark's Node.js Socket.IO anchor)"
        )
        return
    for project in NODE_PROJECTS:
        digest = hashlib.sha256((project / "package-lock.json").read_bytes()).hexdigest()
        stamp = project / "node_modules" / ".package-lock.sha256"
        if stamp.exists() and stamp.read_text() == digest:
            continue
        sh(npm, "ci", "--prefix", project, "--ignore-scripts", "--no-audit", "--no-fund")
        stamp.write_text(digest)


def run(args: list[str]) -> None:
    """Migrate the database and serve the example project with daphne, in development mode.

    ``DJANGO_DEBUG=1`` unless set: the example then generates a secret key of its own
    (.secret_key) instead of refusing to start without ``DJANGO_SECRET_KEY``.
    """
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "8000")
    os.environ.setdefault("DJANGO_DEBUG", "1")
    sh(PYTHON, "manage.py", "migrate", "--noinput")
    print(f"\nwscommands example: http://{host}:{port}/  (WebSocket at /ws/)\n", flush=True)
    os.execv(
        BIN / "daphne",
        [str(BIN / "daphne"), "-b", host, "-p", port, *args, "project.asgi:application"],
    )


@dataclass
class Stage:
    """One step of ``dev.py test``: a command, or None when it cannot run here (``why``)."""

    name: str
    command: list[str | Path] | None
    why: str = ""
    result: str = "not run"
    seconds: float = 0.0


def run_stages(stages: list[Stage]) -> int:
    """Run every stage, even after one failed, so no failure hides the later ones; print each
    stage's time as it ends and all of them at the end. The exit code: 1 if any failed."""
    for stage in stages:
        if stage.command is None:
            stage.result = "failed" if IN_CI else "skipped"
            print(f"+ {stage.name}: {stage.why}", flush=True)
            continue
        print(f"\n=== {stage.name}\n+", " ".join(str(c) for c in stage.command), flush=True)
        started = time.monotonic()
        code = subprocess.call([str(c) for c in stage.command], cwd=ROOT)
        stage.seconds = time.monotonic() - started
        stage.result = "ok" if code == 0 else f"failed (exit {code})"
        print(f"=== {stage.name}: {stage.result} in {stage.seconds:.1f} s", flush=True)
    print("\ndev.py test:", flush=True)
    width = max(len(stage.name) for stage in stages)
    for stage in stages:
        line = f"  {stage.name:<{width}}  {stage.result:<18} {stage.seconds:7.1f} s  {stage.why}"
        print(line.rstrip())
    failed = [stage.name for stage in stages if stage.result not in ("ok", "skipped")]
    print(f"FAILED: {', '.join(failed)}" if failed else "all stages passed", flush=True)
    return 1 if failed else 0


def test_stages(args: list[str]) -> list[Stage]:
    """Lint, the browser client's tests, then every pytest suite (or just ``args``)."""
    stages = [
        Stage("lint: ruff check", [BIN / "ruff", "check", "."]),
        Stage("lint: ruff format", [BIN / "ruff", "format", "--check", "."]),
        # pyproject.toml's [tool.mypy]: zero errors over wscommands/.
        Stage("types: mypy", [BIN / "mypy"]),
    ]
    # The browser client's unit tests, its declarations against tsc and the classic build's
    # staleness check (tests/js): skipped without Node only outside CI.
    if shutil.which("node"):
        stages.append(Stage("node tests", ["node", "--test", "tests/js/"]))
    else:
        stages.append(Stage("node tests", None, "node not found: apt-get install nodejs npm"))
    if args:  # a chosen subset: run just that
        return [*stages, Stage("pytest " + " ".join(args), [PYTHON, "-m", "pytest", *args])]
    return [
        *stages,
        Stage("pytest core", [PYTHON, "-m", "pytest", "--ignore=tests/browser"]),
        # Playwright's sync API keeps an event loop of its own running for the whole session,
        # which pytest-asyncio's tests cannot share: the browser tests get a run of their own.
        Stage("pytest browser", [PYTHON, "-m", "pytest", "tests/browser"]),
        # The core suite once more on the Redis backends (channels-redis, RedisBackend): see
        # tests/scaleout/redis_suite.py. It exits 0 with a message when Redis is down outside CI.
        Stage(
            "pytest redis suite",
            [
                *(PYTHON, "-m", "pytest", "-p", "tests.scaleout.redis_suite", "tests/"),
                *("-m", "not e2e and not browser", "--ignore=tests/browser"),
            ],
        ),
    ]


def test(args: list[str]) -> None:
    """Every stage of test_stages, all run; exits non-zero if any failed."""
    sys.exit(run_stages(test_stages(args)))


def manage(args: list[str]) -> None:
    """``manage.py`` with the project's virtualenv, in development mode (as ``run``)."""
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.execv(PYTHON, [str(PYTHON), str(ROOT / "manage.py"), *args])


def main() -> None:
    commands = {"run": run, "test": test, "manage": manage, "install": lambda args: None}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: python3 dev.py {{{'|'.join(commands)}}} [args...]")
    install()
    install_node()
    commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
