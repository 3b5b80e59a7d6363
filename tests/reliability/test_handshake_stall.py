"""Handshakes never wait on Redis: a stalled Redis (CLIENT PAUSE) delays no new connection.

What has to reach Redis at a handshake (the presence entry, the user's channel-layer
membership) follows in the background and arrives once Redis answers again.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.scaleout.client import WSClient
from tests.scaleout.conftest import http_login

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

#: How long Redis stalls. Redis 7.0 holds even CLIENT UNPAUSE during a pause, so the stall
#: ends by itself; the test only relies on the order of events, not on this duration.
STALL_MS = 15_000
#: Fails the test instead of hanging (far above the stall).
HANG = 60


# The engine registers a connection in its own handshake gate: the same promise, another path.
@pytest.mark.parametrize("kind", ["daphne", "engine"], indirect=True)
async def test_handshakes_complete_while_redis_is_paused(own_redis, live, kind):
    """Anonymous and signed-in clients connect and are served during CLIENT PAUSE ALL.

    The Redis timeouts are raised above the stall, and a request that needs Redis is sent
    first: it stays stuck for the whole stall, so clients served while it is still stuck
    were served without waiting on Redis.
    """
    server = live(
        {"REDIS_URL": own_redis.url},
        kind=kind,
        REDIS_OPTIONS={"socket_timeout": 120},
        CHANNEL_LAYER_TIMEOUT=120,
    )
    keeper = await WSClient.open(server.ws)  # the process is up and its hub running
    stuck_client = await WSClient.open(server.ws)
    session = http_login(live() if kind == "engine" else server, "rel")  # the engine: no HTTP
    assert own_redis.cli("client", "pause", str(STALL_MS), "all") == "OK"
    stuck = asyncio.create_task(stuck_client.request({"counter.get": {}}, timeout=HANG))
    async with asyncio.timeout(HANG):
        guest = await WSClient.open(server.ws)
        user = await WSClient.open(server.ws, session)
        assert (await guest.call("whoami"))["authenticated"] is False
        assert (await user.call("whoami"))["authenticated"] is True
        assert await keeper.call("echo", text="still here") == {"text": "still here"}
    assert not stuck.done(), "Redis answered before the clients were served: no stall seen"

    async with asyncio.timeout(HANG):
        assert "counter.get" in await stuck  # the stall is over
        ids = {(await c.call("whoami"))["connection_id"] for c in (guest, user, keeper)}
        while not ids <= set(await keeper.call("probe.presence")):
            await asyncio.sleep(0.1)
        # The user's channel-layer membership followed too: a message to the user arrives.
        while True:
            await user.call("probe.to_me", message={"note": 1})
            try:
                await user.push("note", timeout=1)
                break
            except TimeoutError:
                continue
    for client in (guest, user, keeper, stuck_client):
        await client.close()
