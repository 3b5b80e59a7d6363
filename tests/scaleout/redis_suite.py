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
import socket
from urllib.parse import urlparse

import pytest

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args) -> None:
    """Point the project at Redis before pytest-django loads the settings."""
    parsed = urlparse(REDIS_URL)
    try:
        socket.create_connection((parsed.hostname, parsed.port or 6379), timeout=1).close()
    except OSError:
        message = f"the Redis run needs Redis at {REDIS_URL} (set TEST_REDIS_URL)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            raise pytest.UsageError(message) from None
        pytest.exit(f"skipped: {message}", returncode=0)
    os.environ["REDIS_URL"] = REDIS_URL


@pytest.fixture(autouse=True)
def _empty_redis() -> None:
    """Each test starts with no global state, presence or channel-layer groups."""
    import redis

    with redis.Redis.from_url(REDIS_URL) as client:
        client.flushdb()
