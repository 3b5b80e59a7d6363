"""SIGTERM: clients closed with 4503, hooks run, presence and groups cleaned, prompt exit; a
second signal stops at once. SIGKILL: the other process's presence view is clean within
PRESENCE_TTL. On two daphnes, two engines and an engine beside daphne (the engine runs the same
shutdown, guards/shutdown.py)."""

from __future__ import annotations

import asyncio
import json
import signal
import time

import pytest

from tests.live import PAIRS
from tests.reliability.services import wait_until
from tests.scaleout.client import WSClient

pytestmark = [pytest.mark.e2e, pytest.mark.redis]
on_every_pair = pytest.mark.parametrize("kinds", PAIRS, indirect=True, ids="+".join)

PRESENCE_TTL = 3.0


async def presence(client: WSClient) -> list[str]:
    return await client.call("probe.presence")


#: The Redis Pub/Sub channel behind the wscommands group "room" (RedisPubSubChannelLayer).
ROOM_CHANNEL = "wscommands-asgi__group__wscommands.g.room"


def room_subscribers(redis) -> int:
    """How many processes are subscribed to the group "room" in Redis."""
    return int(redis.cli("pubsub", "numsub", ROOM_CHANNEL).split()[-1])


@on_every_pair
async def test_sigterm_closes_4503_runs_hooks_and_cleans_up(own_redis, live, kinds):
    env = {"REDIS_URL": own_redis.url, "WSCOMMANDS_PRESENCE_TTL": str(PRESENCE_TTL)}
    server_a = live(env, kind=kinds[0], SHUTDOWN_TIMEOUT=10)
    server_b = live(env, kind=kinds[1])
    leaving = [await WSClient.open(server_a.ws) for _ in range(3)]
    watcher = await WSClient.open(server_b.ws)
    await watcher.call("probe.join", group="room")
    ids = []
    for client in leaving:
        ids.append((await client.call("whoami"))["connection_id"])
        await client.call("chat.join", room="room")
    assert room_subscribers(own_redis) == 2  # a process subscribes once, for all its members
    assert set(ids) <= set(await presence(watcher))

    started = time.monotonic()
    server_a.process.send_signal(signal.SIGTERM)
    for client in leaving:
        async with asyncio.timeout(10):
            await asyncio.gather(client._reader, return_exceptions=True)
        assert client.ws.close_code == 4503
    assert await asyncio.to_thread(server_a.process.wait, 15) == 0
    exited = time.monotonic() - started
    # the example's on_disconnect hook tells the room each one left
    for connection_id in ids:
        await watcher.push("chat_left", lambda v, c=connection_id: v["connection_id"] == c)
    # One read of the store serves presence queries for up to presence.READ_MAX_AGE (0.5 s),
    # and the shutdown can take less: look again, for well under the TTL after which the
    # entries would have expired anyway.
    async with asyncio.timeout(PRESENCE_TTL / 2):
        while set(ids) & set(await presence(watcher)):
            await asyncio.sleep(0.1)
    assert room_subscribers(own_redis) == 1  # only the watcher's process is left
    assert "closing 3 connection(s) with 4503" in server_a.log()
    print(f"SIGTERM: 3 clients closed 4503, process exited after {exited:.2f}s")
    assert exited < 10 + 5  # SHUTDOWN_TIMEOUT plus the server's own stop
    await watcher.close()


@on_every_pair
async def test_sigkill_drops_out_of_presence_within_ttl(own_redis, live, kinds):
    env = {"REDIS_URL": own_redis.url, "WSCOMMANDS_PRESENCE_TTL": str(PRESENCE_TTL)}
    server_a, server_b = (live(env, kind=kind) for kind in kinds)
    victim = await WSClient.open(server_a.ws)
    victim_id = (await victim.call("whoami"))["connection_id"]
    watcher = await WSClient.open(server_b.ws)
    assert victim_id in await presence(watcher)
    killed = time.monotonic()
    server_a.process.send_signal(signal.SIGKILL)
    server_a.process.wait()
    while victim_id in await presence(watcher):
        assert time.monotonic() - killed < PRESENCE_TTL + 5, "still present"
        await asyncio.sleep(0.1)
    gone = time.monotonic() - killed
    print(f"SIGKILL: gone from presence after {gone:.2f}s (PRESENCE_TTL {PRESENCE_TTL}s)")
    await watcher.close()
    await asyncio.gather(victim._reader, return_exceptions=True)
    wait_until(lambda: victim.ws.close_code is not None, 5, what="victim closed")


@pytest.mark.parametrize(
    ("kind", "sig"),
    [
        pytest.param("daphne", signal.SIGTERM, id="daphne-SIGTERM"),
        pytest.param("engine", signal.SIGTERM, id="engine-SIGTERM"),
        # Ctrl-C: the engine's own handler. daphne's SIGINT is Twisted's, with no graceful
        # shutdown to cut short.
        pytest.param("engine", signal.SIGINT, id="engine-SIGINT"),
    ],
    indirect=["kind"],
)
async def test_a_second_signal_stops_at_once(live, kind, sig):
    """The graceful shutdown gives a running request DISCONNECT_GRACE (5 s), and refuses new
    handshakes with 4503 meanwhile: a second signal stops the process at once, a sync command
    still holding a worker thread or not."""
    server = live(kind=kind)
    client = await WSClient.open(server.ws)
    await client.ws.send(json.dumps({"probe.hold": {"seconds": 60}}))
    await client.push("holding")
    server.process.send_signal(sig)
    assert await client.wait_closed() == 4503  # the graceful shutdown has begun
    late = await WSClient.open(server.ws)
    assert await late.wait_closed() == 4503
    server.process.send_signal(sig)
    await asyncio.to_thread(server.process.wait, 15)
    assert "connection(s) closed in" not in server.log()  # it did not run to its end
