"""Fan-out isolation against a real daphne: a recipient that is going away stops nobody else."""

from __future__ import annotations

import asyncio

import pytest

from tests.scaleout.client import WSClient

pytestmark = pytest.mark.e2e

BROADCASTS = 150
VANISHING = 30
STEADY = 5


async def test_recipients_closing_during_broadcasts_stop_nobody(live):
    """30 clients close while 150 broadcasts go out: each steady client gets all 150, in order.

    Before fan-out isolation the first write to a closing socket ended the hub's loop, and
    every recipient after it in that broadcast lost the message.
    """
    server = live()
    # The hub writes in connection order: the vanishing ones come first, so one failed
    # write that ended the loop would cost every steady client that message.
    vanishing = [await WSClient.open(server.ws) for _ in range(VANISHING)]
    steady = [await WSClient.open(server.ws) for _ in range(STEADY)]
    sender, watcher = steady[0], await WSClient.open(server.ws)
    # Every connection is registered once it has answered a request.
    for client in [*vanishing, *steady, watcher]:
        await client.call("whoami")
    start = await sender.call("counter.get")
    # The broadcasts are pipelined, so the hub delivers them back to back while the
    # vanishing clients' close handshakes go on.
    increments = [
        asyncio.create_task(sender.request({"counter.increment": {}}, timeout=60))
        for _ in range(BROADCASTS)
    ]
    for n, client in enumerate(vanishing):
        await watcher.push("counter", lambda v, n=n: v["value"] >= start + 1 + n * 4, timeout=30)
        await client.close()
    await asyncio.gather(*increments)
    expected = list(range(start + 1, start + BROADCASTS + 1))
    for client in steady:
        await client.push("counter", lambda v: v["value"] == expected[-1], timeout=30)
        values = [p["counter"]["value"] for p in client.pushes if "counter" in p]
        assert values == expected[:-1], f"got {len(values) + 1} of {BROADCASTS}"
    for client in [*steady, watcher]:
        await client.close()
    log = server.log()
    assert "Traceback" not in log, log[-3000:]
