"""Real server processes (daphne, and in the resume tests each server kind) sharing the real
Redis and a PostgreSQL database of their own."""

from __future__ import annotations

import asyncio
import http.cookiejar
import secrets
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from urllib.parse import urlparse

import pytest

from tests.live import RedisServer, Server, base_env, manage
from tests.require import require
from tests.scaleout.client import WSClient

#: Short enough that the kill -9 test waits seconds, long enough for a loaded CI machine.
PRESENCE_TTL = "3"
USERS = ("ann", "bob")


@pytest.fixture(scope="session")
def scaleout_database(postgres_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database (migrated, users ann and bob), dropped afterwards."""
    import psycopg

    name = f"wscommands_scaleout_{secrets.token_hex(4)}"
    admin = urlparse(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin._replace(path=f"/{name}").geturl()
    env = base_env(DATABASE_URL=url)
    manage("migrate", "--noinput", env=env)
    script = "; ".join(f"User.objects.create_user({u!r}, password='pw')" for u in USERS)
    manage("shell", "-c", f"from django.contrib.auth.models import User; {script}", env=env)
    yield url
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def cluster_env(redis_url: str, scaleout_database: str) -> dict[str, str]:
    """Environment of the cluster's processes: Redis, PostgreSQL, the op.* commands."""
    return base_env(
        REDIS_URL=redis_url,
        DATABASE_URL=scaleout_database,
        DJANGO_SETTINGS_MODULE="tests.scaleout.settings",
        WSCOMMANDS_PRESENCE_TTL=PRESENCE_TTL,
    )


@pytest.fixture(scope="session")
def cluster(cluster_env: dict[str, str]) -> Iterator[tuple[Server, Server]]:
    """Processes A and B of one cluster."""
    servers = [Server(cluster_env).start(), Server(cluster_env).start()]
    yield servers[0], servers[1]
    for server in servers:
        server.stop()


def http_login(server: Server, username: str) -> str:
    """Log in through the login form of ``server``; returns the session key."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login = f"{server.http}/accounts/login/"
    opener.open(login, timeout=30).read()
    csrf = next(c.value for c in jar if c.name == "csrftoken")
    data = urllib.parse.urlencode(
        {"username": username, "password": "pw", "csrfmiddlewaretoken": csrf}
    ).encode()
    request = urllib.request.Request(login, data, headers={"Referer": login})
    opener.open(request, timeout=30).read()
    return next(c.value for c in jar if c.name == "sessionid")


@pytest.fixture
async def clients() -> Iterator:
    """Open WSClients with ``await clients(url, session_key=None)``; all closed afterwards."""
    opened: list[WSClient] = []

    async def open_client(url: str, session_key: str | None = None) -> WSClient:
        client = await WSClient.open(url, session_key)
        opened.append(client)
        return client

    yield open_client
    await asyncio.gather(*(c.close() for c in opened), return_exceptions=True)


@pytest.fixture
def throwaway_redis(redis_url: str) -> Iterator[RedisServer]:
    """A private Redis (never the shared one: stopping that would disturb other test runs)."""
    require("redis-server")
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def kind(request) -> str:
    """The server kind of ``servers``: daphne, or each of ``tests.live.SERVERS`` in a module
    that parametrizes it (``pytest.mark.parametrize("kind", SERVERS, indirect=True)``)."""
    chosen = getattr(request, "param", "daphne")
    if chosen == "engine":
        require("picows")
    return chosen


@pytest.fixture
def login(cluster) -> Callable[[str], str]:
    """``login(username)``: a session key from the login form of the cluster's process A (the
    engine serves no HTTP; sessions live in PostgreSQL, so every process knows the key)."""
    return lambda username: http_login(cluster[0], username)


@pytest.fixture
def servers(cluster_env, kind) -> Iterator[Callable[..., Server]]:
    """``servers(**env)``: a process of ``kind`` on the cluster's environment; stopped
    afterwards."""
    started: list[Server] = []

    def start(**env: str) -> Server:
        server = Server({**cluster_env, **env}, kind=kind).start()
        started.append(server)
        return server

    yield start
    for server in started:
        print(f"server log: {server.log_path}")
        server.stop()
