"""Redis stopped or paused under two daphne processes (a throwaway redis-server).

While Redis is gone: no client is closed, commands that do not need Redis answer, those
that do get ``unavailable``, handshakes work. When it is back (even empty, after a restart),
broadcasts and group messages flow again within about a second.
"""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from websockets.exceptions import ConnectionClosed

from tests.reliability.services import RedisServer
from tests.scaleout.client import WSClient

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

OUTAGE = 5.0
_tokens = itertools.count()


async def cluster(live, redis: RedisServer):
    """Processes A and B on ``redis``; client a on A, b on B, both in group ``room``."""
    env = {"REDIS_URL": redis.url}
    server_a, server_b = live(env), live(env)
    a, b = await WSClient.open(server_a.ws), await WSClient.open(server_b.ws)
    for client in (a, b):
        await client.call("probe.join", group="room")
    await delivered(a, b, "probe.broadcast")
    await delivered(a, b, "probe.group")
    return server_a, server_b, a, b


async def delivered(sender: WSClient, receiver: WSClient, how: str, timeout: float = 5) -> None:
    """A message sent by ``sender`` (broadcast or to the room) reaches ``receiver``."""
    token = next(_tokens)
    message = {"ping": token}
    args = (
        {"message": message} if how == "probe.broadcast" else {"group": "room", "message": message}
    )
    reply = await sender.request({how: args})
    assert "errors" not in reply, reply
    await receiver.push("ping", lambda v: v == token, timeout=timeout)


async def until_delivered(sender: WSClient, receiver: WSClient, how: str, deadline: float) -> float:
    """Retry (every 0.1 s) until a message gets through; seconds it took."""
    started = time.monotonic()
    while True:
        try:
            await delivered(sender, receiver, how, timeout=0.5)
            return time.monotonic() - started
        except (AssertionError, TimeoutError):
            if time.monotonic() - started > deadline:
                raise
            await asyncio.sleep(0.1)


async def during_outage(server_a, a: WSClient, b: WSClient, seconds: float) -> dict:
    """Drive the cluster while Redis is out; returns what was observed.

    Requests that need Redis run one at a time in the background (they may wait up to the
    timeouts) while echo and new handshakes go on.
    """
    seen = {"echo": 0, "unavailable": set(), "handshakes": 0, "slowest_echo": 0.0}
    seen["slowest_unavailable"] = 0.0
    # its own connection: requests of one connection run in order, so a's echoes would
    # wait behind it (as the protocol says they must)
    c = await WSClient.open(server_a.ws)

    async def needs_redis() -> None:
        started = time.monotonic()
        reply = await c.request(
            {"counter.increment": {}, "probe.broadcast": {"message": {"lost": 1}}}, timeout=15
        )
        seen["slowest_unavailable"] = max(seen["slowest_unavailable"], time.monotonic() - started)
        for name, entry in reply.get("errors", {}).items():
            assert entry["code"] == "unavailable", reply
            seen["unavailable"].add(name)

    background = asyncio.create_task(needs_redis())
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if background.done():
            background.result()
            background = asyncio.create_task(needs_redis())
        for client in (b, a):
            started = time.monotonic()
            assert await client.call("echo", text="up") == {"text": "up"}
            seen["slowest_echo"] = max(seen["slowest_echo"], time.monotonic() - started)
            seen["echo"] += 1
        newcomer = await WSClient.open(server_a.ws)
        assert await newcomer.call("echo", text="hi") == {"text": "hi"}
        await newcomer.close()
        seen["handshakes"] += 1
        await asyncio.sleep(0.1)
    await background
    await c.close()
    return seen


def assert_open(*clients: WSClient) -> None:
    for client in clients:
        assert client.ws.close_code is None, f"closed with {client.ws.close_code}"


async def test_redis_stopped_for_5s_and_restarted_empty(own_redis, live):
    """Kill Redis for 5 s; it comes back with no data (no persistence)."""
    server_a, _, a, b = await cluster(live, own_redis)
    own_redis.cli("set", "reliability-marker", "1")
    own_redis.stop()
    seen = await during_outage(server_a, a, b, OUTAGE)
    own_redis.start()
    assert own_redis.cli("exists", "reliability-marker") == "0"  # the data is gone
    broadcast_after = await until_delivered(a, b, "probe.broadcast", deadline=10)
    group_after = await until_delivered(a, b, "probe.group", deadline=10)
    late = await WSClient.open(server_a.ws)  # joined the hub while Redis was down
    assert await late.call("echo", text="x") == {"text": "x"}
    await delivered(b, late, "probe.broadcast")
    print(
        f"redis stop: {seen['echo']} echoes (slowest {seen['slowest_echo']:.2f}s), "
        f"unavailable within {seen['slowest_unavailable']:.2f}s, "
        f"{seen['handshakes']} handshakes, unavailable={sorted(seen['unavailable'])}; "
        f"broadcast back after {broadcast_after:.2f}s, group after {group_after:.2f}s"
    )
    assert seen["unavailable"] == {"counter.increment", "probe.broadcast"}
    assert seen["handshakes"] > 0
    assert_open(a, b)
    for client in (a, b, late):
        await client.close()


async def test_redis_paused_for_5s(own_redis, live):
    """CLIENT PAUSE 5000 ALL: a stalled Redis, commands hang there and nowhere else."""
    server_a, _, a, b = await cluster(live, own_redis)
    assert own_redis.cli("client", "pause", str(int(OUTAGE * 1000)), "all") == "OK"
    paused_at = time.monotonic()
    seen = await during_outage(server_a, a, b, OUTAGE - 0.5)
    while time.monotonic() - paused_at < OUTAGE:
        await asyncio.sleep(0.05)
    broadcast_after = await until_delivered(a, b, "probe.broadcast", deadline=10)
    group_after = await until_delivered(a, b, "probe.group", deadline=10)
    print(
        f"redis pause: {seen['echo']} echoes (slowest {seen['slowest_echo']:.2f}s), "
        f"unavailable within {seen['slowest_unavailable']:.2f}s, "
        f"{seen['handshakes']} handshakes, unavailable={sorted(seen['unavailable'])}; "
        f"broadcast back after {broadcast_after:.2f}s, group after {group_after:.2f}s"
    )
    assert "counter.increment" in seen["unavailable"]
    assert seen["handshakes"] > 0
    assert_open(a, b)
    for client in (a, b):
        await client.close()


#: The Redis Pub/Sub channel every hub receives broadcasts on (RedisPubSubChannelLayer).
ALL_CHANNEL = "wscommands-asgi__group__wscommands.all"
#: Outages tried until one shows the broadcast published while the layer was unsubscribed.
OUTAGES = 5
#: What channels_redis logs each time its receive task fails to reach Redis (then it waits 1 s).
RECEIVE_FAILED = "Unexpected exception in receive task"


async def until_logged(server, text: str, count: int, deadline: float = 15) -> None:
    """Wait until ``text`` is in the server's log ``count`` times."""
    started = time.monotonic()
    while server.log().count(text) < count:
        assert time.monotonic() - started < deadline, f"{text!r} not logged {count} times"
        await asyncio.sleep(0.05)


async def broadcast_accepted(client: WSClient, message: dict, deadline: float = 10) -> None:
    """Broadcast until the server accepts it (the first sends after a restart may meet a
    socket of the old Redis: ``unavailable``)."""
    started = time.monotonic()
    while "errors" in (reply := await client.request({"probe.broadcast": {"message": message}})):
        assert time.monotonic() - started < deadline, reply
        await asyncio.sleep(0.05)


async def test_a_broadcast_sent_before_the_layer_resubscribed_is_delivered(own_redis, live):
    """Redis restarted empty: the Pub/Sub layer subscribes again at its next reconnection
    (channels_redis tries once a second), and Redis gives what was published before that to
    no one. The broadcast is in history: the hub, noticing the reconnection, catches up and
    the client receives it (it was lost for good: the intermittent failure of
    tests/scaleout/test_faults.py::test_redis_outage_answers_unavailable_and_recovers)."""
    server = live({"REDIS_URL": own_redis.url})
    client = await WSClient.open(server.ws)
    await delivered(client, client, "probe.broadcast")  # the hub is up and subscribed
    for _ in range(OUTAGES):
        own_redis.stop()
        # The layer found Redis gone and failed to reconnect: its next try is a second away.
        await until_logged(server, RECEIVE_FAILED, server.log().count(RECEIVE_FAILED) + 1)
        own_redis.start()
        token = next(_tokens)
        await broadcast_accepted(client, {"ping": token})
        published_to_no_one = own_redis.cli("pubsub", "numsub", ALL_CHANNEL).split()[-1] == "0"
        await client.push("ping", lambda v, token=token: v == token, timeout=10)
        if published_to_no_one:
            break
        # The layer had subscribed again already (a slow restart): try again.
    else:
        pytest.fail(f"in {OUTAGES} outages no broadcast went out before the re-subscription")
    await client.close()


async def _handshake_outcome(url: str) -> str:
    """``"served"`` (echo answered), ``"closed <code>"``, or the error of the handshake."""
    try:
        client = await WSClient.open(url)
    except Exception as exc:  # e.g. HTTP 500, or a handshake daphne dropped
        return type(exc).__name__
    try:
        reply = await client.request({"echo": {"text": "x"}}, timeout=5)
    except (ConnectionError, ConnectionClosed, TimeoutError):
        return f"closed {await client.wait_closed()}"
    await client.close()
    return "served" if reply.get("echo") == {"text": "x"} else f"replied {reply}"


async def _served_again(server) -> str:
    """Handshake until one is served (each one before closed with 4503, none refused in any
    other way), within 30 s; the server's log, in which no request failed."""
    deadline = time.monotonic() + 30
    while (outcome := await _handshake_outcome(server.ws)) != "served":
        assert outcome == "closed 4503" and time.monotonic() < deadline, outcome
        await asyncio.sleep(0.2)
    log = server.log()
    # (channels_redis logs its own failed unsubscribe, with a traceback, while Redis is down)
    assert "Exception inside application" not in log and "ERROR wscommands" not in log, log
    return log


@pytest.mark.parametrize("kind", ["daphne", "engine"], indirect=True)
async def test_a_hub_that_restarts_while_redis_is_down_refuses_with_4503(own_redis, live, kind):
    """The hub stops with the process's last connection. With Redis down, starting it again
    cannot subscribe its channel: each handshake is accepted and closed with 4503 (reconnect),
    not HTTP 500 with a traceback (the penetration test: 5 of 5); once Redis is back, served."""
    server = live({"REDIS_URL": own_redis.url}, kind=kind)
    first = await WSClient.open(server.ws)
    assert await first.call("echo", text="x") == {"text": "x"}
    own_redis.stop()
    await first.close()  # the hub stops; its calls to Redis fail at once (refused)
    outcomes = []
    deadline = time.monotonic() + 30
    while "closed 4503" not in outcomes and time.monotonic() < deadline:
        outcomes.append(await _handshake_outcome(server.ws))
    assert outcomes[-1] == "closed 4503", outcomes
    assert set(outcomes) <= {"served", "closed 4503"}, outcomes  # never an HTTP error
    own_redis.start()
    log = await _served_again(server)
    assert "new connections are closed with 4503" in log


@pytest.mark.parametrize("kind", ["daphne", "engine"], indirect=True)
async def test_a_hub_stopping_against_a_stalled_redis_drops_no_handshake(own_redis, live, kind):
    """CLIENT PAUSE, then the process's last connection closes: the hub's stop talks to the
    stalled Redis under the lock the next handshake waits on. One deadline for the whole stop
    (not one per call) keeps that handshake within daphne's 5 s: it is answered (4503 or
    served), never dropped (the penetration test: dropped after 4.7 s)."""
    server = live({"REDIS_URL": own_redis.url}, kind=kind)
    first = await WSClient.open(server.ws)
    assert await first.call("echo", text="x") == {"text": "x"}
    assert own_redis.cli("client", "pause", "8000", "all") == "OK"
    await first.close()
    await asyncio.sleep(0.2)  # the stop is under way (its first Redis call hangs)
    assert await _handshake_outcome(server.ws) in {"closed 4503", "served"}
    await _served_again(server)
