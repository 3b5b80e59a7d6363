"""The load generator's Socket.IO adapter: the same picows client, speaking Engine.IO 4 /
Socket.IO 5 over a plain WebSocket (``/socket.io/?EIO=4&transport=websocket``, no polling).

Only what the echo and broadcast scenarios need, which python-socketio and Node's socket.io
both answer the same way:

- handshake: the server opens with Engine.IO ``0{...}``; the client joins the default
  namespace with ``40`` and is ready at the server's ``40{"sid": ...}``;
- echo: ``42<id>["echo",{"text":"hello"}]``, acknowledged with ``43<id>[{"text":"hello"}]``
  (an acknowledgement, not an emitted reply event: one frame each way, as wscommands' echo);
- pushes: ``42["bench",{"seq": n, ...}]``, counted like wscommands' ``{"bench": ...}``;
- heartbeat: the server's ping ``2`` is answered with ``3``.

The closed loop and its timing stay :class:`bench.client.BenchClient`'s: this class only turns
frames into its hooks (``_echo_request``, ``_echo_answered``, ``_pushed``).
"""

from __future__ import annotations

import asyncio
from time import perf_counter
from typing import Any

import orjson
from picows import WSMsgType, WSTransport

from ..client import BenchClient, PushCounter

#: The echo loop's event (``%d``: the acknowledgement id) and the acknowledgement it expects.
ECHO = b'42%d["echo",{"text":"hello"}]'
ECHOED = [{"text": "hello"}]
#: Engine.IO packet types (the first character) and Socket.IO's inside a message (``4``).
OPEN, CLOSE, PING, PONG, MESSAGE = b"0", b"1", b"2", b"3", b"4"
CONNECT, EVENT, ACK, CONNECT_ERROR = b"40", b"42", b"43", b"44"


class SocketIOClient(BenchClient):
    """One Socket.IO connection on the default namespace (see the module doc)."""

    def __init__(self, pushes: PushCounter | None = None) -> None:
        super().__init__(pushes)
        self._joined: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def ready(self, timeout: float = 30) -> None:
        """Wait until the server has let this client into the default namespace."""
        await asyncio.wait_for(asyncio.shield(self._joined), timeout)

    def emit(self, event: str, data: Any) -> None:
        """Send an event without asking for an acknowledgement (the broadcast trigger)."""
        assert self.transport is not None
        self.transport.send(WSMsgType.TEXT, EVENT + orjson.dumps([event, data]))

    async def request(self, message: dict[str, Any], timeout: float = 30) -> tuple[Any, float]:
        """Not spoken here: the anchors take part in the echo and broadcast scenarios only."""
        raise NotImplementedError("the Socket.IO anchors answer echo events only")

    def _echo_request(self, request_id: int) -> bytes:
        return ECHO % request_id

    def on_ws_frame(self, transport: WSTransport, frame: Any) -> None:
        now = perf_counter()
        if frame.msg_type != WSMsgType.TEXT:
            super().on_ws_frame(transport, frame)  # a close frame, never data here
            return
        payload = frame.get_payload_as_bytes()
        if payload.startswith(EVENT):
            self._event(payload, now)
        elif payload.startswith(ACK):
            self._ack(payload, now)
        elif payload == PING:
            transport.send(WSMsgType.TEXT, PONG)
        elif payload.startswith(CONNECT):
            if not self._joined.done():
                self._joined.set_result(None)
        elif payload.startswith(OPEN):
            transport.send(WSMsgType.TEXT, CONNECT)
        elif payload.startswith(CONNECT_ERROR) or payload.startswith(CLOSE):
            self._fail(ConnectionRefusedError(f"Socket.IO refused: {payload[:200]!r}"))
            transport.disconnect()
        else:
            self.other_pushes += 1  # noop and the like: not what we measure

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._fail(ConnectionError("disconnected"))
        super().on_ws_disconnected(transport)

    def _fail(self, error: Exception) -> None:
        if not self._joined.done():
            self._joined.set_exception(error)

    def _event(self, payload: bytes, now: float) -> None:
        name, *args = orjson.loads(payload[len(EVENT) :])
        if name == "bench":
            self._pushed(args[0]["seq"], now)
        else:
            self.other_pushes += 1

    def _ack(self, payload: bytes, now: float) -> None:
        start = payload.index(b"[")
        ack_id = int(payload[len(ACK) : start])
        if self._loop is not None:
            ok = ack_id == self._sent_id and orjson.loads(payload[start:]) == ECHOED
            self._echo_answered(ok, now)
        else:
            self.errors += 1  # an acknowledgement nobody asked for
