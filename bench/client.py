"""The load generator: picows WebSocket clients driven by callbacks, no task per message.

One :class:`BenchClient` per connection. It answers three needs of the scenarios: a closed
echo loop (send, wait for the reply, send again), single requests, and counting pushes
(broadcast frames, recognised by their ``{"bench":`` prefix) with their arrival time.
Servers under ``/socket.io/`` (the anchors) get the Socket.IO adapter, bench/anchors/client.py,
a subclass that turns Socket.IO frames into the same hooks.
"""

from __future__ import annotations

import asyncio
import itertools
from time import perf_counter
from typing import Any
from urllib.parse import urlsplit

import orjson
from picows import WSListener, WSMsgType, WSTransport, ws_connect

#: Pushes sent by the broadcast scenario start with this key.
PUSH_PREFIX = b'{"bench":'
#: The echo loop's request per command (``%d``: the request_id); each replies {"text": "hello"}.
ECHOES = {
    "echo": b'{"echo":{"text":"hello"},"request_id":%d}',
    # The same through a msgspec Struct argument and result (the example's echo.typed).
    "echo.typed": b'{"echo.typed":{"message":{"text":"hello"}},"request_id":%d}',
}


class PushCounter:
    """Counts the clients that received push number ``seq``; ``done`` when all have."""

    def __init__(self) -> None:
        self.seq = -1
        self.expected = 0
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.duplicates = 0
        #: Pushes of another broadcast than the one awaited: another app's (servers that
        #: should not share a channel-layer group do), or one past its round's timeout.
        self.strays = 0
        self.done: asyncio.Future | None = None

    def arm(self, seq: int, expected: int) -> asyncio.Future:
        """Start waiting for ``expected`` clients to receive push ``seq``."""
        self.seq, self.expected, self.count, self.last = seq, expected, 0, 0.0
        self.first = 0.0
        self.done = asyncio.get_running_loop().create_future()
        return self.done

    def got(self, seq: int, now: float) -> None:
        if seq != self.seq:
            self.strays += 1
            return
        self.count += 1
        if self.count == 1:
            self.first = now
        self.last = now
        if self.count == self.expected and self.done is not None and not self.done.done():
            self.done.set_result(None)


class BenchClient(WSListener):
    """One connection: a closed echo loop, requests, or push counting (see module doc)."""

    def __init__(self, pushes: PushCounter | None = None) -> None:
        self.transport: WSTransport | None = None
        self.pushes = pushes
        self.last_push = -1
        self.waiter: asyncio.Future | None = None
        self.replies = 0
        self.errors = 0
        self.other_pushes = 0
        self._ids = itertools.count(1)
        self._loop: tuple[float, list[float], asyncio.Future] | None = None
        self._echo_command = "echo"
        self._sent_id = 0
        self._sent_at = 0.0

    # picows callbacks ---------------------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: Any) -> None:
        now = perf_counter()
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if frame.msg_type != WSMsgType.TEXT:
            return
        payload = frame.get_payload_as_bytes()
        if payload.startswith(PUSH_PREFIX):
            self._push(payload, now)
        elif b'"request_id"' not in payload:
            self.other_pushes += 1  # e.g. presence events: not what we measure
        elif self._loop is not None:
            self._echo_reply(payload, now)
        elif self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((payload, now))
        else:
            self.errors += 1  # a reply nobody asked for

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("disconnected"))
        if self._loop is not None and not self._loop[2].done():
            self._loop[2].set_exception(ConnectionError("disconnected"))

    # Pushes -------------------------------------------------------------------------------

    def _push(self, payload: bytes, now: float) -> None:
        self._pushed(orjson.loads(payload)["bench"]["seq"], now)

    def _pushed(self, seq: int, now: float) -> None:
        """Count push ``seq`` (a repeat of the last one is a duplicate)."""
        if seq == self.last_push:
            if self.pushes is not None:
                self.pushes.duplicates += 1
            return
        self.last_push = seq
        if self.pushes is not None:
            self.pushes.got(seq, now)

    async def ready(self) -> None:
        """Return once the connection takes requests (a protocol with a handshake of its own
        over the WebSocket waits for it here)."""

    # Requests -----------------------------------------------------------------------------

    async def request(self, message: dict[str, Any], timeout: float = 30) -> tuple[Any, float]:
        """Send one request and return ``(decoded reply, seconds it took)``.

        A ``request_id`` is added when missing: frames without one are taken for pushes.
        """
        assert self.transport is not None
        if "request_id" not in message:
            message = {**message, "request_id": next(self._ids)}
        self.waiter = asyncio.get_running_loop().create_future()
        started = perf_counter()
        self.transport.send(WSMsgType.TEXT, orjson.dumps(message))
        payload, arrived = await asyncio.wait_for(self.waiter, timeout)
        self.replies += 1
        return orjson.loads(payload), arrived - started

    def echo_loop(
        self, until: float, latencies: list[float], command: str = "echo"
    ) -> asyncio.Future:
        """Send echo requests back to back until ``until``; the future ends with the loop.

        ``command``: a key of :data:`ECHOES`.
        """
        done = asyncio.get_running_loop().create_future()
        self._loop = (until, latencies, done)
        self._echo_command = command
        self._send_echo()
        return done

    def _send_echo(self) -> None:
        assert self.transport is not None
        self._sent_id = next(self._ids)
        self._sent_at = perf_counter()
        self.transport.send(WSMsgType.TEXT, self._echo_request(self._sent_id))

    def _echo_request(self, request_id: int) -> bytes:
        """The echo loop's frame (a protocol adapter's subclass sends its own)."""
        return ECHOES[self._echo_command] % request_id

    def _echo_reply(self, payload: bytes, now: float) -> None:
        reply = orjson.loads(payload)
        command = self._echo_command
        ok = reply.get("request_id") == self._sent_id and reply.get(command) == {"text": "hello"}
        self._echo_answered(ok, now)

    def _echo_answered(self, ok: bool, now: float) -> None:
        """Record the reply to the echo in flight and send the next one until the loop ends."""
        assert self._loop is not None
        until, latencies, done = self._loop
        if ok:
            self.replies += 1
            latencies.append(now - self._sent_at)
        else:
            self.errors += 1
        if now < until:
            self._send_echo()
        else:
            self._loop = None
            done.set_result(None)


def listener_for(url: str) -> type[BenchClient]:
    """The client class that speaks the protocol of the server at ``url``: Socket.IO under
    ``/socket.io/`` (the anchors of :mod:`bench.anchors`), wscommands' JSON elsewhere."""
    if urlsplit(url).path.startswith("/socket.io/"):
        # Imported here: the adapter subclasses BenchClient, so it imports this module.
        from .anchors.client import SocketIOClient

        return SocketIOClient
    return BenchClient


async def connect(url: str, pushes: PushCounter | None = None) -> BenchClient:
    """Open one connection (raises on failure)."""
    # A page of the server itself: its scheme, host and port (the same-origin policy's).
    parsed = urlsplit(url)
    origin = {"Origin": f"{'https' if parsed.scheme == 'wss' else 'http'}://{parsed.netloc}"}
    listener = listener_for(url)
    transport, client = await ws_connect(
        lambda: listener(pushes), url, extra_headers=origin, websocket_handshake_timeout=30
    )
    if not isinstance(client, BenchClient):
        raise ConnectionError(f"no connection: ws_connect returned {client!r}")
    try:
        await client.ready()
    except BaseException:
        transport.disconnect()  # refused after the WebSocket opened: do not keep it
        raise
    return client


async def connect_many(
    urls: list[str], n: int, batch: int = 100, pushes: PushCounter | None = None
) -> tuple[list[BenchClient], list[str]]:
    """Open ``n`` connections, ``batch`` at a time, spread round-robin over ``urls``.

    Returns the clients that connected and one error text per connection that failed.
    """
    clients: list[BenchClient] = []
    failures: list[str] = []
    for start in range(0, n, batch):
        results = await asyncio.gather(
            *(connect(urls[i % len(urls)], pushes) for i in range(start, min(start + batch, n))),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                failures.append(f"{type(result).__name__}: {result}")
            else:
                clients.append(result)
    return clients, failures


async def close_all(clients: list[BenchClient], timeout: float = 30) -> None:
    """Close every connection and wait (bounded) until they are gone."""
    transports = [c.transport for c in clients if c.transport is not None]
    for transport in transports:
        transport.send_close()
        transport.disconnect()
    if transports:
        await asyncio.wait(
            [asyncio.ensure_future(t.wait_disconnected()) for t in transports], timeout=timeout
        )
