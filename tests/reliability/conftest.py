"""Fixtures of the reliability suite: limits in-process, live daphne processes, own services."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import override_settings

from tests.live import Server, base_env, create_user
from tests.reliability.services import PostgresCluster, RedisServer
from tests.require import require

SETTINGS = "tests.reliability.settings"


@pytest.fixture
def limits(settings) -> Callable[..., None]:
    """``limits(RATE_LIMIT=1, ...)``: override WSCOMMANDS keys for an in-process test.

    Presence events are off, so every frame a test receives is a reply.
    """

    def apply(**values: Any) -> None:
        merged = {**settings.WSCOMMANDS, "PRESENCE_EVENTS": False, **values}
        override = override_settings(WSCOMMANDS=merged)
        override.enable()
        overrides.append(override)

    overrides: list[override_settings] = []
    yield apply
    for override in reversed(overrides):
        override.disable()


@pytest.fixture(scope="session")
def reliability_db(sqlite_env) -> dict[str, str]:
    """The migrated SQLite environment with a user ``rel`` (password ``pw``)."""
    create_user(sqlite_env, "rel", "pw")
    return sqlite_env


@pytest.fixture
def live(reliability_db) -> Iterator[Callable[..., Server]]:
    """``live(env=..., args=(server options), application=..., kind="daphne", "uvicorn" or
    "engine", **WSCOMMANDS limits)``: a server process; stopped afterwards."""
    servers: list[Server] = []

    def start(
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        application: str = "project.asgi:application",
        kind: str = "daphne",
        **limits: Any,
    ) -> Server:
        extra = dict(env or {})
        extra.setdefault("DATABASE_URL", reliability_db["DATABASE_URL"])
        extra.setdefault("WSCOMMANDS_PRESENCE_EVENTS", "0")
        server = Server(
            base_env(
                DJANGO_SETTINGS_MODULE=SETTINGS, WSCOMMANDS_LIMITS=json.dumps(limits), **extra
            ),
            kind=kind,
            args=args,
            application=application,
        ).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        print(f"server log: {server.log_path}")  # shown by pytest when the test fails
        server.stop()


@pytest.fixture
def kind(request) -> str:
    """The server kind a test runs against: ``@pytest.mark.parametrize("kind", SERVERS,
    indirect=True)`` (``tests.live.SERVERS``) runs it against each (the engine needs picows)."""
    if request.param == "engine":
        require("picows")
    return request.param


@pytest.fixture
def kinds(request) -> tuple[str, str]:
    """The server kinds of a two-process test: ``@pytest.mark.parametrize("kinds", PAIRS,
    indirect=True, ids="+".join)`` (``tests.live.PAIRS``) runs it on each pair."""
    if "engine" in request.param:
        require("picows")
    return request.param


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A throwaway redis-server (faults are injected into it, never the shared one)."""
    require("redis-server")
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def own_postgres() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster (restarted by tests, never the shared one)."""
    require("initdb")
    require("runuser")  # PostgreSQL runs as the postgres user
    cluster = PostgresCluster().start()
    yield cluster
    cluster.stop()
