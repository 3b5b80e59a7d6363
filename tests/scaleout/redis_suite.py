"""pytest plugin: run the core suite on the Redis backends (channels-redis + RedisBackend).

    TEST_REDIS_URL=redis://127.0.0.1:6379/15 \\
        python -m pytest -p tests.scaleout.redis_suite tests/ -m "not e2e and not browser"

It sets ``REDIS_URL`` before Django reads the settings, so the example project switches its
channel layer and global-state/presence backend to Redis exactly as a deployment does, and
empties that Redis database before every test (the memory backends start empty too).
Live servers are unaffected (tests/live.py strips REDIS_URL); the scale-out tests cover them.
"""

from __future__ import annotations

import os

import pytest

from tests.require import IN_CI, REDIS_URL, SERVICES, answers

#: Why this run cannot use Redis (set when it is not reachable outside CI).
_missing: str | None = None


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args) -> None:
    """Point the project at Redis before pytest-django loads the settings.

    Without Redis: a usage error in CI; elsewhere every test is skipped saying how to start
    it (exit status 0, as for any skipped service; pytest.exit here would exit with 1).
    """
    global _missing
    if not answers(REDIS_URL, 6379):
        message = f"the Redis run needs {SERVICES['redis'].how}"
        if IN_CI:
            raise pytest.UsageError(message)
        _missing = message
        return
    os.environ["REDIS_URL"] = REDIS_URL


def pytest_collection_modifyitems(config, items) -> None:
    """Without Redis (outside CI), skip every test of the run with the reason."""
    if _missing is not None:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=_missing))


@pytest.fixture(autouse=True)
def _empty_redis() -> None:
    """Each test starts with no global state, presence or channel-layer groups."""
    import redis

    with redis.Redis.from_url(REDIS_URL) as client:
        client.flushdb()
