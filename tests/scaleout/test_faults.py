"""A daphne process on Redis: a burst of handshakes, and Redis going away and coming back."""

from __future__ import annotations

import asyncio

import pytest

from tests.live import Server
from tests.scaleout.client import WSClient
from tests.scaleout.test_cluster import until

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.postgres]

#: Several times redis-py's default pool of 100 connections.
BURST = 400


async def test_a_burst_of_handshakes_succeeds(cluster, clients):
    """400 clients connect to one process at once; each is served and receives a broadcast."""
    a, b = cluster
    burst = await asyncio.gather(*(WSClient.open(a.ws) for _ in range(BURST)))
    try:
        sender = await clients(b.ws)
        await sender.call("op.broadcast", message={"burst": 1})
        for client in burst:
            assert await client.push("burst", timeout=30) == 1
    finally:
        await asyncio.gather(*(client.close() for client in burst))


async def test_redis_outage_answers_unavailable_and_recovers(cluster_env, throwaway_redis):
    """Redis down: commands that need it get `unavailable`, others still answer; then back."""
    server = Server({**cluster_env, "REDIS_URL": throwaway_redis.url}).start()
    client = None
    try:
        client = await WSClient.open(server.ws)
        assert await client.call("op.increment", key="k") == 1
        throwaway_redis.stop()

        reply = await client.request({"echo": {"text": "still here"}, "op.get": {"key": "k"}})
        assert reply["echo"] == {"text": "still here"}
        assert reply["errors"]["op.get"]["code"] == "unavailable"

        throwaway_redis.start()  # empty again: no persistence

        async def recovered():
            reply = await client.request({"op.increment": {"key": "k"}})
            return reply.get("op.increment")

        assert await until(recovered) == 1

        # The first send may still meet a socket of the old Redis: `unavailable`, retry.
        async def broadcast_accepted():
            reply = await client.request({"op.broadcast": {"message": {"after": 1}}})
            return "errors" not in reply

        await until(broadcast_accepted)
        assert await client.push("after", timeout=30) == 1
    finally:
        if client is not None:
            await client.close()
        server.stop()
