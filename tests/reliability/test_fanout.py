"""Fan-out isolation against real servers: a recipient that is going away stops nobody else."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tests.scaleout.client import WSClient

pytestmark = pytest.mark.e2e

BROADCASTS = 150
VANISHING = 30
STEADY = 5


# The engine writes each broadcast's frame straight to the sockets: its own fan-out path.
@pytest.mark.parametrize("kind", ["daphne", "engine"], indirect=True)
async def test_recipients_closing_during_broadcasts_stop_nobody(live, kind):
    """30 clients close while 150 broadcasts go out: each steady client gets all 150, in order.

    Before fan-out isolation the first write to a closing socket ended the hub's loop, and
    every recipient after it in that broadcast lost the message.
    """
    server = live(kind=kind)
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


def _open_without_reading(port: int) -> socket.socket:
    """A WebSocket handshake on a raw socket with a tiny receive buffer, which then never
    reads: the server's writes to it soon wait (under uvicorn)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        b"GET /ws/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


async def test_clients_that_do_not_read_under_uvicorn_delay_no_broadcast(live):
    """Under uvicorn a send waits while its client does not read, so five such clients first
    in line would each hold up every broadcast (by SEND_TIMEOUT each, found by the penetration
    test: 25 s for 25 of them). Flow control finds uvicorn's transport and cuts a client off
    once MAX_OUTGOING_BACKLOG is unsent, instead of writing: no write ever waits, and every
    broadcast reaches the steady client."""
    server = live(
        kind="uvicorn",
        MAX_OUTGOING_BACKLOG=256 * 1024,
        RATE_LIMIT=None,
        RATE_LIMIT_BYTES=None,
    )
    stuck = [_open_without_reading(server.port) for _ in range(5)]
    steady = await WSClient.open(server.ws)
    await steady.call("whoami")
    pad = "x" * 100_000
    # 10 MB to each non-reader: more than the kernel's socket buffers take (up to 4 MB on
    # loopback), so uvicorn's own buffer fills past the backlog cap.
    for n in range(100):
        await steady.call("probe.broadcast", message={"big": {"n": n, "pad": pad}})
    await steady.push("big", lambda v: v["n"] == 99, timeout=60)  # (taken from .pushes)
    got = [p["big"]["n"] for p in steady.pushes if "big" in p]
    assert got == list(range(99))
    log = server.log()
    assert "a write took too long" not in log, log[-3000:]
    assert "client does not read" in log, log[-3000:]  # (logged once per interval)
    for sock in stuck:
        sock.close()
    await steady.close()
