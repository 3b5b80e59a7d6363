"""PROTOCOL.md, Requests: commands run in order, requests start in arrival order and wait
for earlier ones, except requests whose commands are all concurrent."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tests.testapp.helpers import eventually, scratch_registry, without_presence_events
from wscommands import command
from wscommands.testing import CommandClient

log: list[tuple[str, str]] = []
gates: dict[str, asyncio.Event] = {}


@pytest.fixture(autouse=True)
def _commands(settings):
    """t.block / t.mark, and their concurrent twins t.cblock / t.cmark."""
    without_presence_events(settings)
    log.clear()
    gates.clear()
    with scratch_registry():
        for concurrent in (False, True):
            prefix = "t.c" if concurrent else "t."

            @command(name=f"{prefix}block", concurrent=concurrent)
            async def block(connection, key: str):
                log.append(("start", key))
                await gates.setdefault(key, asyncio.Event()).wait()
                log.append(("end", key))
                return key

            @command(name=f"{prefix}mark", concurrent=concurrent)
            async def mark(connection, key: str):
                log.append(("mark", key))
                return key

        @command(name="t.syncmark")
        def syncmark(connection, key: str):
            log.append(("mark", key))
            return key

        yield


def release(key: str) -> None:
    gates.setdefault(key, asyncio.Event()).set()


async def barrier(client: CommandClient) -> None:
    """Return once the consumer has taken every frame sent so far.

    A frame that is not JSON is answered at once, in arrival order, without waiting for
    running requests; by the time its answer is read, the requests sent before it have
    been scheduled and would have started already if nothing held them back.
    """
    await client.send("not json")
    while True:
        frame = await client.receive()
        if frame.get("errors", {}).get("request", {}).get("code") == "invalid_json":
            return
        client._replies[frame["request_id"]] = frame


async def reply_ids(client: CommandClient, count: int) -> list:
    ids = []
    for _ in range(count):
        ids.append((await client.receive())["request_id"])
    return ids


async def test_commands_of_one_request_run_one_after_another_in_written_order():
    """An async command that waits does not let the next command of its request start."""
    async with CommandClient() as client:
        await client.send({"t.mark": {"key": "1"}, "t.block": {"key": "2"}, "t.syncmark": "3"})
        await barrier(client)
        assert log == [("mark", "1"), ("start", "2")]
        release("2")
        assert await client.receive() == {"t.mark": "1", "t.block": "2", "t.syncmark": "3"}
    assert log == [("mark", "1"), ("start", "2"), ("end", "2"), ("mark", "3")]


async def test_a_request_waits_until_the_earlier_request_has_finished():
    """The second request does not start while the first one is still running."""
    async with CommandClient() as client:
        await client.send({"t.block": {"key": "a"}, "request_id": 1})
        await client.send({"t.mark": {"key": "b"}, "request_id": 2})
        await barrier(client)
        assert log == [("start", "a")]
        release("a")
        assert await reply_ids(client, 2) == [1, 2]
    assert log == [("start", "a"), ("end", "a"), ("mark", "b")]


async def test_requests_start_and_answer_in_arrival_order_sync_and_async_alike():
    """A sync command (in a thread) holds up the async requests sent after it."""
    thread_gate = threading.Event()

    @command(name="t.syncblock")
    def syncblock(connection, key: str):
        log.append(("start", key))
        thread_gate.wait(5)
        log.append(("end", key))
        return key

    async with CommandClient() as client:
        await client.send({"t.syncblock": {"key": "0"}, "request_id": 0})
        for i, name in enumerate(["t.mark", "t.syncmark", "t.mark", "t.syncmark"], start=1):
            await client.send({name: {"key": str(i)}, "request_id": i})
        await barrier(client)
        await eventually(lambda: bool(log))
        assert log == [("start", "0")]
        thread_gate.set()
        assert await reply_ids(client, 5) == [0, 1, 2, 3, 4]
    assert log == [("start", "0"), ("end", "0")] + [("mark", str(i)) for i in range(1, 5)]


async def test_concurrent_requests_do_not_hold_up_later_ones():
    """A request of concurrent commands still running: later requests run and answer first."""
    async with CommandClient() as client:
        await client.send({"t.cblock": {"key": "slow"}, "request_id": "slow"})
        await client.send({"t.mark": {"key": "x"}, "echo": {"text": "x"}, "request_id": "fast"})
        await client.send({"t.syncmark": {"key": "y"}, "request_id": "fast2"})
        assert await reply_ids(client, 2) == ["fast", "fast2"]
        assert ("end", "slow") not in log
        release("slow")
        assert await client.receive() == {"t.cblock": "slow", "request_id": "slow"}


async def test_the_example_report_command_is_concurrent():
    """report (declared concurrent) does not make this connection's later requests wait."""
    async with CommandClient() as client:
        await client.send({"report": {"year": 2024}, "t.cblock": {"key": "r"}, "request_id": 1})
        assert await client.call("t.mark", key="after") == "after"
        release("r")
        reply = await client.receive()
        assert reply["request_id"] == 1
        assert reply["report"]["year"] == 2024


async def test_concurrent_requests_still_wait_for_earlier_non_concurrent_ones():
    """Concurrent means later requests do not wait for it, not that it jumps the queue."""
    async with CommandClient() as client:
        await client.send({"t.block": {"key": "a"}, "request_id": 1})
        await client.send({"t.cmark": {"key": "b"}, "request_id": 2})
        await client.send({"t.cmark": {"key": "c"}, "request_id": 3})
        await barrier(client)
        assert log == [("start", "a")]
        release("a")
        assert await reply_ids(client, 3) == [1, 2, 3]
    assert log == [("start", "a"), ("end", "a"), ("mark", "b"), ("mark", "c")]


async def test_a_request_mixing_concurrent_and_other_commands_is_not_concurrent():
    """Only a request whose commands are all concurrent lets later requests pass it."""
    async with CommandClient() as client:
        await client.send({"t.cblock": {"key": "a"}, "t.mark": {"key": "m"}, "request_id": 1})
        await client.send({"t.mark": {"key": "b"}, "request_id": 2})
        await barrier(client)
        assert log == [("start", "a")]
        release("a")
        assert await reply_ids(client, 2) == [1, 2]
    assert log == [("start", "a"), ("end", "a"), ("mark", "m"), ("mark", "b")]


async def test_a_request_with_an_unknown_command_is_not_concurrent():
    """Unknown names are not declared concurrent: such a request waits like any other."""
    async with CommandClient() as client:
        await client.send({"t.block": {"key": "a"}, "request_id": 1})
        await client.send({"t.cmark": {"key": "b"}, "nope": {}, "request_id": 2})
        await client.send({"t.mark": {"key": "c"}, "request_id": 3})
        await barrier(client)
        assert log == [("start", "a")]
        release("a")
        assert await reply_ids(client, 3) == [1, 2, 3]
    assert log == [("start", "a"), ("end", "a"), ("mark", "b"), ("mark", "c")]


async def test_other_connections_are_not_held_up_by_a_waiting_request():
    """Ordering is per connection: another connection's requests run meanwhile."""
    async with CommandClient() as first, CommandClient() as second:
        await first.send({"t.block": {"key": "a"}, "request_id": 1})
        await eventually(lambda: ("start", "a") in log)
        assert await second.call("t.mark", key="other") == "other"
        release("a")
        assert await first.receive() == {"t.block": "a", "request_id": 1}


async def test_too_many_waiting_requests_are_refused_with_their_request_id(settings):
    """Past MAX_PENDING_REQUESTS the request is refused with rate_limited; the reply carries
    its request_id (exactly one reply per request that has one), and nothing runs."""
    settings.WSCOMMANDS = {**settings.WSCOMMANDS, "MAX_PENDING_REQUESTS": 2}
    async with CommandClient() as client:
        await client.send({"t.block": {"key": "a"}, "request_id": 1})
        await client.send({"t.mark": {"key": "b"}, "request_id": 2})
        await client.send({"t.mark": {"key": "refused"}, "request_id": 3})
        refused = await client.receive()
        assert refused["request_id"] == 3
        assert refused["errors"]["request"]["code"] == "rate_limited"
        release("a")
        assert await reply_ids(client, 2) == [1, 2]
        assert await client.call("t.mark", key="c") == "c"
    assert ("mark", "refused") not in log
