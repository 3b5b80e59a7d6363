"""Shared fixtures: service availability, a clean channel layer per test, live servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from asgiref.sync import SyncToAsync
from hypothesis import settings as hypothesis_settings

from tests.live import Server, base_env, manage
from tests.require import IN_CI, require

# CI replays the same examples every run (a failure there is reproducible); locally
# Hypothesis explores new ones each time.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if IN_CI:
    hypothesis_settings.load_profile("ci")


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """node_modules with package-lock.json's tools (tsc, the AsyncAPI JSON Schemas)."""
    return Path(require("node_modules"))


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis used by tests (database 15 by default), flushed once per session."""
    url = require("redis")
    import redis

    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL database used by end-to-end tests."""
    return require("postgres")


@pytest.fixture(autouse=True)
def _fresh_wscommands_state():
    """Every test starts with an empty channel layer and a new runtime (hub, stores, pool...)."""
    from channels.layers import channel_layers

    from wscommands._internal.runtime import RUNTIME

    channel_layers.backends.clear()
    RUNTIME.reset()
    yield
    channel_layers.backends.clear()
    # Also drops the worker pool: threads that used the in-memory test database keep their
    # connection (SQLite's close() skips in-memory databases), and Channels checks it before
    # every message, which counts as database access in the next test: new wscommands
    # workers, and asgiref's shared thread (ORM a-methods, Channels' close_old_connections)
    # drops its connections.
    RUNTIME.reset()
    SyncToAsync.single_thread_executor.submit(_drop_database_connections).result()


def _drop_database_connections() -> None:
    from django.db import connections
    from django.db.backends.base.base import BaseDatabaseWrapper

    for connection in connections.all(initialized_only=True):
        BaseDatabaseWrapper.close(connection)


@pytest.fixture
def scratch(settings) -> Iterator[None]:
    """The test's own commands, pushes and hooks, gone after it, and no presence pushes (so
    every frame is a reply). A module opts in with ``pytestmark``; one that registers its own
    commands for every test does it in an autouse fixture that takes this one."""
    from tests.testapp.helpers import scratch_registry, without_presence_events

    without_presence_events(settings)
    with scratch_registry():
        yield


@pytest.fixture(scope="session")
def sqlite_env(tmp_path_factory) -> dict[str, str]:
    """Environment for live servers on a migrated SQLite file (one per test session)."""
    path = tmp_path_factory.mktemp("live") / "db.sqlite3"
    env = base_env(DATABASE_URL=f"sqlite:///{path}")
    manage("migrate", "--noinput", env=env)
    return env


@pytest.fixture
def daphne(sqlite_env):
    """A factory of daphne processes on the SQLite environment; all stopped afterwards."""
    servers: list[Server] = []

    def start(env: dict[str, str] | None = None, kind: str = "daphne") -> Server:
        server = Server(env or sqlite_env, kind=kind).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
