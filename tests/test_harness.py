"""The test harness is honest: what a test needs and cannot find skips it locally (saying how to
get it) and fails it in CI; the Redis run without Redis exits 0 locally, non-zero in CI."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.live import ROOT, base_env, free_port
from tests.require import SERVICES

#: A test that needs a service that cannot be there.
NEEDS_MISSING = """
from tests.require import SERVICES, Service, require

SERVICES["nothing"] = Service(lambda: None, "apt-get install nothing")


def test_needs_nothing():
    require("nothing")
"""


def run_pytest(*args: str, ci: bool, **env: str) -> subprocess.CompletedProcess:
    environment = base_env(**env)
    environment.pop("CI", None)
    if ci:
        environment["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def needs_missing(tmp_path):
    path = ROOT / "tests" / f"test_tmp_require_{tmp_path.name}.py"
    path.write_text(textwrap.dedent(NEEDS_MISSING))
    yield str(path.relative_to(ROOT))
    path.unlink()


@pytest.mark.parametrize("ci", [False, True])
def test_require_skips_locally_and_fails_in_ci(needs_missing, ci):
    result = run_pytest(needs_missing, ci=ci)
    assert "nothing is not available: apt-get install nothing" in result.stdout
    if ci:
        assert result.returncode == 1
        assert "1 failed" in result.stdout
    else:
        assert result.returncode == 0
        assert "1 skipped" in result.stdout


@pytest.mark.parametrize("ci", [False, True])
def test_the_redis_run_without_redis(ci):
    """Locally: every test skipped with how to start Redis, exit 0. CI: a usage error."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = run_pytest(
        "-p", "tests.scaleout.redis_suite", "tests/test_compat.py", ci=ci, TEST_REDIS_URL=url
    )
    output = result.stdout + result.stderr
    assert f"the Redis run needs Redis at {url}" in output
    if ci:
        assert result.returncode == 4  # pytest's usage error
    else:
        assert result.returncode == 0, output
        assert "skipped" in result.stdout and "passed" not in result.stdout


def test_every_service_says_how_to_get_it():
    assert all(service.how for service in SERVICES.values())
