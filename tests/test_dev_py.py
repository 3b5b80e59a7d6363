"""dev.py and manage.py as a developer meets them: every test stage reported, manage.py in
development mode after ``dev.py run``, and the warning for a push that reaches nobody."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import wscommands
from tests.live import ROOT, base_env, run_manage
from wscommands.testing import CommandClient

pytestmark = pytest.mark.e2e


def load_dev():
    return importlib.import_module("dev")  # the checkout's root is on sys.path


def test_every_stage_runs_after_a_failure_and_all_are_reported(tmp_path, capfd):
    dev = load_dev()

    def stage(name: str, code: int):
        marker = tmp_path / name
        script = f"import pathlib, sys; pathlib.Path({str(marker)!r}).touch(); sys.exit({code})"
        return dev.Stage(name, [sys.executable, "-c", script])

    stages = [stage("first", 0), stage("second", 3), stage("third", 0)]
    assert dev.run_stages(stages) == 1
    assert all((tmp_path / name).exists() for name in ("first", "second", "third"))
    out = capfd.readouterr().out
    summary = out[out.index("dev.py test:") :]
    for name, result in (("first", "ok"), ("second", "failed (exit 3)"), ("third", "ok")):
        assert f"=== {name}: {result} in " in out  # each stage's time, as it ends
        line = next(line for line in summary.splitlines() if line.strip().startswith(name))
        assert result in line and line.rstrip().endswith(" s"), line
    assert "FAILED: second" in summary

    assert dev.run_stages([stage("alone", 0)]) == 0
    assert "all stages passed" in capfd.readouterr().out


def test_the_stages_ci_needs_are_all_there():
    names = [stage.name for stage in load_dev().test_stages([])]
    for needed in ("ruff check", "ruff format", "mypy", "node", "core", "browser", "redis"):
        assert any(needed in name for name in names), (needed, names)


def development_env(tmp_path, **extra: str) -> dict[str, str]:
    """The example project as a developer's shell has it: no key, no debug switch."""
    env = base_env(DJANGO_SETTINGS_MODULE="project.settings", **extra)
    for name in ("DJANGO_SECRET_KEY", "DJANGO_DEBUG"):
        env.pop(name, None)
    env["DJANGO_SECRET_KEY_FILE"] = str(tmp_path / ".secret_key")
    env.update(extra)
    return env


SHOW_DEBUG = "from django.conf import settings; print('DEBUG', settings.DEBUG)"


def test_manage_py_without_a_key_says_how_to_fix_it_without_a_traceback(tmp_path):
    result = run_manage("createsuperuser", "--help", env=development_env(tmp_path))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert "DJANGO_SECRET_KEY is not set" in result.stderr
    assert "python3 dev.py manage" in result.stderr


def test_manage_py_is_in_development_mode_after_dev_py_run(tmp_path):
    """``dev.py run`` leaves .secret_key: manage.py then needs no variable."""
    (tmp_path / ".secret_key").write_text("k" * 50)
    result = run_manage("shell", "-c", SHOW_DEBUG, env=development_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "DEBUG True" in result.stdout
    # An explicit choice wins: production stays production.
    result = run_manage("shell", "-c", SHOW_DEBUG, env=development_env(tmp_path, DJANGO_DEBUG="0"))
    assert result.returncode != 0 and "DJANGO_SECRET_KEY is not set" in result.stderr


def test_dev_py_manage_runs_manage_py_in_development_mode(tmp_path):
    env = development_env(tmp_path, WSCOMMANDS_VENV=sys.prefix)
    # dev.manage directly: main() would first sync the virtualenv's requirements.
    code = f"import dev; dev.manage(['shell', '-c', {SHOW_DEBUG!r}])"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "DEBUG True" in result.stdout
    assert (tmp_path / ".secret_key").exists()


PUSH = (
    "from asgiref.sync import async_to_sync; import wscommands; "
    "async_to_sync(wscommands.broadcast)({'notice': 1}); "
    "async_to_sync(wscommands.send_to_group)('lobby', {'notice': 2})"
)


def test_a_push_from_a_shell_on_the_in_memory_layer_warns_once(tmp_path):
    result = run_manage("shell", "-c", PUSH, env=base_env())
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert output.count("reaches nobody from this process") == 1, output
    assert "wscommands.broadcast reaches nobody" in output
    assert "channels_redis" in output


async def test_no_warning_where_this_process_serves_a_connection(monkeypatch, caplog):
    from wscommands.delivery import messaging

    monkeypatch.setattr(messaging, "_reach_checked", False)
    async with CommandClient() as client:
        await wscommands.broadcast({"notice": 1})
        assert await client.receive_push() == {"notice": 1}
    assert "reaches nobody" not in caplog.text
