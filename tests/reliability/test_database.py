"""Database hygiene on a throwaway PostgreSQL cluster: restarts and connection counts."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.live import base_env, create_user, manage
from tests.reliability.conftest import SETTINGS
from tests.scaleout.client import WSClient
from tests.scaleout.conftest import http_login

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

WORKER_THREADS = 4


def connections(url: str) -> int:
    """Client connections to the cluster's databases, not counting this one."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchone()[0]


# The engine loads sessions in the worker pool and sweeps stale connections on its own.
@pytest.mark.parametrize("kind", ["daphne", "engine"], indirect=True)
async def test_orm_after_restart_and_connections_bounded(own_postgres, live, kind):
    env = {"DATABASE_URL": own_postgres.url}
    manage("migrate", "--noinput", env=base_env(DJANGO_SETTINGS_MODULE=SETTINGS, **env))
    create_user(base_env(DJANGO_SETTINGS_MODULE=SETTINGS, **env), "rel", "pw")
    server = live(env, kind=kind, WORKER_THREADS=WORKER_THREADS)
    key = http_login(live(env) if kind == "engine" else server, "rel")  # the engine: no HTTP
    client = await WSClient.open(server.ws)
    assert (await client.call("authenticate", session_id=key))["authenticate"] == "success"

    own_postgres.restart()
    started = time.monotonic()
    # the very next ORM command succeeds: stale connections are dropped, not reused
    assert (await client.call("authenticate", session_id=key))["authenticate"] == "success"
    assert await client.call("probe.db", seconds=0) is True
    recovered = time.monotonic() - started

    # 12 clients hold a database connection for 1 s each at once
    clients = [await WSClient.open(server.ws) for _ in range(12)]
    peak = 0
    done = asyncio.gather(*(c.call("probe.db", seconds=1) for c in clients))
    while not done.done():
        peak = max(peak, await asyncio.to_thread(connections, own_postgres.url))
        await asyncio.sleep(0.02)
    assert all(await done)
    print(
        f"postgres restart: next ORM command ok ({recovered:.2f}s); "
        f"peak connections {peak} with WORKER_THREADS={WORKER_THREADS}"
    )
    # +1: Channels' session/auth middleware runs its queries in asgiref's single thread
    assert 0 < peak <= WORKER_THREADS + 1
    for c in [client, *clients]:
        await c.close()
