"""server.requestqueue: what a connection's queue does with its requests when it stops.

Each request's task keeps its own books (no done callback): these check that a waiting
request never runs once the queue stops, that a running one gets its grace, and that every
request's frame is released once it is over."""

from __future__ import annotations

import asyncio

from wscommands.commands.registry import Registry
from wscommands.server.requestqueue import RequestQueue


class Resources:
    """The connection's account, as far as the queue uses it."""

    def __init__(self) -> None:
        self.held = 0

    def reserve_request(self, size: int) -> None:
        self.held += size

    def release_request(self, size: int) -> None:
        self.held -= size


class FakeConnection:
    """What running the ``default`` command reads of a connection."""

    user = None

    def __init__(self) -> None:
        self.resources = Resources()


async def test_stop_drops_waiting_requests_and_gives_running_ones_their_grace():
    """A quick request runs and releases its frame; a slow one runs past the grace and is
    cancelled; the one waiting behind it never runs; every frame is released."""
    registry = Registry()
    started: list[str] = []
    release = asyncio.Event()

    @registry.command(name="default")
    async def default(connection, text):
        started.append(text)
        if text == "slow":
            await release.wait()
        return {"done": text}

    sent: list[str] = []

    async def send(text: str) -> None:
        sent.append(text)

    async def close(code: int) -> None:
        raise AssertionError("no request asks to close")

    connection = FakeConnection()
    queue = RequestQueue(connection, registry, send, close)  # type: ignore[arg-type]
    queue.submit_default("quick", len("quick"))
    for _ in range(5):
        await asyncio.sleep(0)
    assert started == ["quick"] and len(sent) == 1
    assert connection.resources.held == 0  # its frame was released when it was over
    queue.submit_default("slow", len("slow"))
    queue.submit_default("never", len("never"))
    for _ in range(5):
        await asyncio.sleep(0)
    assert started == ["quick", "slow"]
    assert connection.resources.held == len("slow") + len("never")
    await queue.stop(grace=0.05)
    await asyncio.sleep(0.01)
    assert started == ["quick", "slow"]  # the waiting one never ran
    assert len(sent) == 1  # the slow one was cancelled after its grace: no reply
    # Both released: the waiting one was cancelled where it waited for the slow one.
    assert connection.resources.held == 0
