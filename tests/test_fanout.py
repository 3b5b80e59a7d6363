"""fanout.write_all against recipients that fail or never finish a write (in-process).

The end-to-end versions run real servers (tests/reliability/test_fanout.py). Under daphne and
uvicorn, flow control cuts off a client that does not read before a write could wait; the
SEND_TIMEOUT checked here is the net for servers whose socket wscommands cannot reach.
"""

from __future__ import annotations

import asyncio

from wscommands.delivery.fanout import write_all
from wscommands.delivery.peer import Peer
from wscommands.wire.codes import CloseCode


class Recipient(Peer):
    """A connection that records what it is sent; ``stuck``: its writes never finish."""

    def __init__(self, name: str, stuck: bool = False):
        self.id = name
        self.groups = set()
        self.stuck = stuck
        self.texts: list[str] = []
        self.closed_with: int | None = None

    async def push_text(self, text: str) -> None:
        if self.stuck:
            await asyncio.Event().wait()  # as a send to a client that never reads
        self.texts.append(text)

    async def close(self, code: int = 1000) -> None:
        self.closed_with = code


async def test_a_write_slower_than_send_timeout_is_abandoned_and_its_client_cut_off(settings):
    settings.WSCOMMANDS = {**settings.WSCOMMANDS, "SEND_TIMEOUT": 0.2}
    stuck, first, last = Recipient("stuck", stuck=True), Recipient("a"), Recipient("b")
    done = await write_all([first, stuck, last], lambda peer: peer.push_text("m"))
    assert done == 2 and first.texts == ["m"] and last.texts == ["m"]
    async with asyncio.timeout(5):
        while stuck.closed_with is None:
            await asyncio.sleep(0.01)
    assert stuck.closed_with == CloseCode.TOO_MANY_REQUESTS


async def test_a_failing_write_stops_no_other():
    class Broken(Recipient):
        async def push_text(self, text: str) -> None:
            raise RuntimeError("consumer bug")

    others = [Recipient(str(n)) for n in range(3)]
    done = await write_all([others[0], Broken("x"), *others[1:]], lambda p: p.push_text("m"))
    assert done == 3 and all(r.texts == ["m"] for r in others)
