"""MAX_INBOX: a client that sends faster than its connection handles stops being read (TCP
pushes back on it) and is read again once the connection has caught up; no frame lost.

Under daphne the consumer behind ``/gate/`` (tests/reliability/gate_asgi.py) handles a frame
only when the test lets it, so the test decides when daphne's queue of frames is full. The
engine handles each frame as it reads it (no queue fills behind a slow consumer): its frames
wait only while a connection opens, which the gate holds there instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.require import require
from tests.scaleout.client import WSClient

pytestmark = pytest.mark.e2e

APPLICATION = "tests.reliability.gate_asgi:application"
CONSUMER = "tests.reliability.gate_asgi.GatedConsumer"
MAX_INBOX = 8
QUEUED = 40  # frames daphne queues while the consumer is held, before any pause
FLOOD = 300  # 64 KB frames sent while reading is paused: 19 MB, more than TCP buffers hold


async def until(condition, what: str, timeout: float = 60):
    """Poll an async condition until it holds; fails naming it (a bound against hangs)."""
    try:
        async with asyncio.timeout(timeout):
            while not (value := await condition()):
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"{what}: not within {timeout} s") from None
    return value


async def _when(read, predicate):
    value = await read()
    return value if predicate(value) else None


async def gated_server(live, kind: str = "daphne", **limits) -> tuple[Any, WSClient, str]:
    """The gate on a ``kind`` server with the flood limits lifted: the server, a control
    connection with the gate closed, and the gated URL."""
    lifted: dict[str, Any] = {
        "RATE_LIMIT": None,
        "RATE_LIMIT_BYTES": None,
        "MAX_PENDING_REQUESTS": 1000,
        "MAX_PENDING_BYTES": 64 * 1024 * 1024,
    }
    if kind == "engine":
        require("picows")
        server = live(kind=kind, args=("--consumer", CONSUMER), **{**lifted, **limits})
        gated_url = server.ws + "?gate=opening"
    else:
        server = live(application=APPLICATION, **{**lifted, **limits})
        gated_url = server.ws.replace("/ws/", "/gate/")
    control = await WSClient.open(server.ws)
    await control.call("gate.set", allow=0)
    return server, control, gated_url


class Flood:
    """``count`` frames of 64 KB, sent as fast as the client's TCP connection takes them."""

    def __init__(self, ws, count: int):
        self.ws = ws
        self.sent = 0
        self.task = asyncio.create_task(self._send(count))

    async def _send(self, count: int) -> None:
        big = json.dumps({"gate.tick": {"padding": "x" * 64_000}})
        for _ in range(count):
            await self.ws.send(big)
            self.sent += 1

    async def blocked(self) -> bool:
        """Whether the writes wait: websockets waits for its buffer to drain, and the kernel
        takes no more because the server does not read the socket."""
        await asyncio.sleep(0.2)
        return not self.task.done() and self.ws.transport.get_write_buffer_size() > 0


async def hold(ws, control: WSClient, frame: str, count: int) -> None:
    """Send ``count`` frames on a gated connection: the first is taken and held by the
    consumer, the others wait in daphne's queue."""
    for _ in range(count):
        await ws.send(frame)
    await until(
        lambda: _when(lambda: control.call("gate.state"), lambda s: s["waiting"] == count - 1),
        "frames queued by daphne",
    )


async def test_a_client_faster_than_its_consumer_is_paused_then_resumed(live):
    _server, control, gated_url = await gated_server(live, MAX_INBOX=MAX_INBOX)
    async with connect(gated_url, max_size=None) as fast:
        await hold(fast, control, json.dumps({"gate.tick": {}}), 1 + QUEUED)

        async def state():
            return await control.call("gate.state")

        # Let three frames through: the first sees QUEUED >= MAX_INBOX waiting and pauses.
        await control.call("gate.set", allow=3)
        paused = await until(
            lambda: _when(state, lambda s: s["handled"] == 3 and s["paused"]), "reading paused"
        )
        queued_when_paused = paused["waiting"]

        flood = Flood(fast, FLOOD)
        await until(flood.blocked, "the client's writes blocked by TCP")
        held = await state()
        # Not read while paused: at most a frame that was already being read came in.
        assert held["waiting"] <= queued_when_paused + 1, (held, flood.sent)
        assert flood.sent < FLOOD

        await control.call("gate.set", allow=None)  # the consumer catches up
        async with asyncio.timeout(120):
            await flood.task  # reading resumed: every byte went through
        await until(
            lambda: _when(state, lambda s: s["handled"] == 1 + QUEUED + FLOOD),
            "every frame handled",
            timeout=120,
        )
        final = await state()
        assert not final["paused"]
        assert final["peak"] <= QUEUED  # the queue never grew past what it held at the pause
    await control.close()


async def test_an_engine_client_faster_than_its_opening_is_paused_then_resumed(live):
    """The engine's frames wait only while their connection opens (its on_connect hooks run):
    past MAX_INBOX of them the engine stops reading the client, and reads it again once the
    connection is open; no frame lost."""
    _server, control, gated_url = await gated_server(live, "engine", MAX_INBOX=MAX_INBOX)

    async def state():
        return await control.call("gate.state")

    async with connect(gated_url, max_size=None) as fast:
        flood = Flood(fast, FLOOD)
        paused = await until(lambda: _when(state, lambda s: s["paused"]), "reading paused")
        assert paused["waiting"] >= MAX_INBOX and paused["handled"] == 0, paused
        await until(flood.blocked, "the client's writes blocked by TCP")
        assert await state() == paused  # nothing read while paused
        assert flood.sent < FLOOD

        await control.call("gate.set", allow=None)  # the connection opens
        async with asyncio.timeout(120):
            await flood.task  # reading resumed: every byte went through
        await until(
            lambda: _when(state, lambda s: s["handled"] == FLOOD),
            "every frame handled",
            timeout=120,
        )
        final = await state()
        assert not final["paused"] and final["waiting"] == 0, final
    await control.close()


async def test_an_engine_client_over_its_rate_as_it_opens_rests_until_retry_after(live):
    """Frames held while the connection opens that put the client over its rate make it rest,
    as any frame over the rate does: it is not read again until retry_after, though the
    opening that paused it is over."""
    _server, control, gated_url = await gated_server(
        live,
        "engine",
        MAX_INBOX=MAX_INBOX,
        MAX_MESSAGE_SIZE=100_000,
        RATE_LIMIT_BYTES=100_000,
        RATE_LIMIT_BYTES_BURST=130_000,  # two frames of 60 KB, then 0.5 s for the next
    )
    padding = "x" * 60_000

    async def state():
        return await control.call("gate.state")

    async with connect(gated_url) as client:
        for n in range(MAX_INBOX + 4):
            if n == MAX_INBOX:  # the rest wait in TCP: the engine holds MAX_INBOX already
                await until(lambda: _when(state, lambda s: s["paused"]), "reading paused")
            await client.send(json.dumps({"gate.tick": {"padding": padding}, "request_id": n}))
        await control.call("gate.set", allow=None)
        replies: dict[int, dict] = {}
        while not replies.keys() >= set(range(MAX_INBOX + 1)):  # to the first sent later
            reply = json.loads(await client.recv())
            replies[reply["request_id"]] = reply
    accepted = sorted(n for n, reply in replies.items() if "errors" not in reply)
    # The burst; the other held frames are refused and make it rest; the first frame read
    # after the rest has its tokens back. (Read at once, it was refused too.)
    assert accepted == [0, 1, MAX_INBOX], replies
    await control.close()


async def test_frames_waiting_in_daphne_count_against_the_process_budget(live):
    """Frames daphne has read but the consumer not yet taken weigh in MAX_CLIENT_MEMORY: a
    connection with 3.8 MB of them waiting (MAX_INBOX lifted) is cut off once the process
    is over its 2 MiB budget; another connection goes on working. Daphne only: the engine
    keeps no frames read but not handled, but for those it holds while a connection opens."""
    server, control, gated_url = await gated_server(
        live, MAX_INBOX=1000, MAX_CLIENT_MEMORY=2 * 1024 * 1024
    )
    async with connect(gated_url, max_size=None) as heavy:
        # 19 frames of 200 KB (3.8 MB) wait in daphne.
        await hold(heavy, control, json.dumps({"gate.tick": {"padding": "x" * 200_000}}), 20)
        await control.call("gate.set", allow=1)  # the next frame taken weighs the inbox
        async with asyncio.timeout(30):
            await heavy.wait_closed()
        assert heavy.close_code in (4429, 1006), heavy.close_code
    assert await control.call("echo", text="still here") == {"text": "still here"}
    assert "cutting off the heaviest connection" in server.log()
    # The cut-off consumer still waits at the gate: let it finish, or daphne's shutdown waits
    # SHUTDOWN_TIMEOUT for it.
    await control.call("gate.set", allow=None)
    await control.close()


async def test_frames_the_engine_holds_while_opening_count_against_the_process_budget(live):
    """The engine's frames held while a connection opens weigh in MAX_CLIENT_MEMORY: a
    connection that sends 3.8 MB of them (MAX_INBOX lifted) is cut off once the process is
    over its 2 MiB budget; another connection goes on working."""
    server, control, gated_url = await gated_server(
        live, "engine", MAX_INBOX=1000, MAX_CLIENT_MEMORY=2 * 1024 * 1024
    )
    async with connect(gated_url, max_size=None) as heavy:
        big = json.dumps({"gate.tick": {"padding": "x" * 200_000}})
        with contextlib.suppress(ConnectionClosed):  # cut off while it still sends
            for _ in range(19):
                await heavy.send(big)
        async with asyncio.timeout(30):
            await heavy.wait_closed()
        assert heavy.close_code in (4429, 1006), heavy.close_code
    assert await control.call("echo", text="still here") == {"text": "still here"}
    assert "cutting off the heaviest connection" in server.log()
    assert (await control.call("gate.state"))["handled"] == 0  # none of its frames ran
    await control.call("gate.set", allow=None)
    await control.close()
