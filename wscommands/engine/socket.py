"""One engine connection: an :class:`~wscommands.server.endpoint.Endpoint` on a picows socket.

picows calls :meth:`EngineSocket.on_ws_frame` for each frame as it is read; the endpoint
decides (guards, parse, request queue) and this class carries the decision out at once,
without a task or a queue per frame. Writes go straight to the TCP transport as frames built
once per text (:class:`Frames`): a broadcast writes the same bytes to every local recipient.
"""

from __future__ import annotations

import asyncio
import contextvars
import struct
from collections.abc import Awaitable
from typing import Any

from .._internal.compat.servers import AsyncioSocket
from ..conf import wscommands_settings
from ..guards.limits import frame_size
from ..observability import logs, metrics
from ..server.endpoint import Endpoint
from ..wire.jsoncodec import encode
from ..wire.protocol import ADMIT, Decision

try:
    from picows import WSListener, WSMsgType
except ImportError:  # the "engine" extra; the engine says what to install
    WSListener = object  # type: ignore[assignment, misc]
    WSMsgType = None  # type: ignore[assignment, misc]
#: The type of nearly every frame, looked up once.
TEXT = WSMsgType.TEXT if WSMsgType is not None else None

#: Close codes a peer may send (RFC 6455 7.4, and the IANA registry's 1012-1014); any other
#: is a protocol error (1002).
_PEER_CODES = frozenset([1000, 1001, 1002, 1003, *range(1007, 1015), *range(3000, 5000)])
#: Closes after a protocol error of the peer (a bad fragment sequence) and invalid UTF-8.
PROTOCOL_ERROR, INVALID_TEXT = 1002, 1007


class Frames:
    """Text frames built once: the last text's frame is reused while the same string object
    is written again (a fan-out writes one text to many sockets)."""

    def __init__(self) -> None:
        self.text: str | None = None
        self.frame = b""

    def of(self, text: str) -> bytes:
        """The unmasked, final WebSocket text frame carrying ``text``."""
        if text is self.text:
            return self.frame
        payload = text.encode("utf-8", "surrogatepass")
        size = len(payload)
        if size < 126:
            header = struct.pack("!BB", 0x81, size)
        elif size < 1 << 16:
            header = struct.pack("!BBH", 0x81, 126, size)
        else:
            header = struct.pack("!BBQ", 0x81, 127, size)
        self.text, self.frame = text, header + payload
        return self.frame


#: The process's frame cache (one event loop, one thread).
FRAMES = Frames()


class TcpSocket(AsyncioSocket):
    """What flow control reaches of an engine connection: its asyncio transport, whose
    reading the engine may pause (a client over its rate, frames held while opening)."""

    can_pause_reading = True

    def pause_reading(self) -> None:
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.transport.resume_reading()


class EngineSocket(Endpoint, WSListener):
    """One WebSocket connection served by the engine (the connection's
    :class:`~wscommands.connection.transport.Transport`)."""

    def __init__(self, scope: dict[str, Any], registry: Any, connection_class: Any, tcp: Any):
        self.scope = scope
        self.registry = registry
        self.connection_class = connection_class
        self.tcp = tcp
        self.ws: Any = None  # picows's WSTransport, once the handshake completes
        self.refusal: Decision = ADMIT  # what enter() decided, carried out after the 101
        self.close_code = 1006  # the code the connection ends with (none received: 1006)
        self.close_asked: int | None = None  # a close asked for before the 101 went out
        self.held: list[tuple[str | None, bytes | None]] | None = []  # frames while opening
        self.held_bytes = 0  # their size, which the process's budget counts
        self.parts: list[bytes] | None = None  # a fragmented message being assembled
        self.text_parts = False
        self.tasks: set[asyncio.Task] = set()
        self.context = contextvars.copy_context()
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        self._done: asyncio.Future[None] = done

    def start(self) -> None:
        """Build the endpoint's parts in this socket's own context."""
        self.context.run(
            self.prepare,
            socket=TcpSocket(self.tcp, wscommands_settings.MAX_OUTGOING_BACKLOG),
        )

    def spawn(self, coroutine: Any) -> None:
        """Run ``coroutine`` as a task in this socket's context, kept until it is done."""
        task = asyncio.get_running_loop().create_task(coroutine, context=self.context)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:  # a bug of ours
            logs.unexpected("engine", "connection task failed", exc=task.exception())

    # Transport (what the connection writes through) ---------------------------------------

    def push_text(self, text: str) -> Awaitable[None]:
        """Write one text frame now (dropped once closing, held back before the 101)."""
        # The frame goes past picows's WSTransport (built once per text, not once per
        # socket): nothing may follow a close frame picows sent on its own (a ping timeout,
        # a protocol error), so its state is asked too. (may_push is False before the 101,
        # so ``ws`` is set here.)
        if self.may_push(text) and not self.ws.is_close_frame_sent:
            self.tcp.write(FRAMES.of(text))
            metrics.frame_sent(text)
        return self._done

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        """Send a close frame with ``code`` and close the socket once it is written."""
        self.close_now(code if isinstance(code, int) and code > 1 else 1000, reason)

    def close_now(self, code: int, reason: str | None = None) -> None:
        """:meth:`close`, at once."""
        self.closing_now()
        if self.ws is None:  # still in the handshake (e.g. shutdown began): close after it
            self.close_asked = code
            return
        if self.ws.is_close_frame_sent:
            return
        self.close_code = code
        self.ws.send_close(code, (reason or "").encode()[:120])
        self.ws.disconnect()

    def act(self, decision: Decision) -> None:
        """Carry out a guard's or the life cycle's decision: rest, reply, then close."""
        if decision.rest:
            self.flow.rest(decision.rest)
        if decision.reply is not None:
            self.push_text(encode(decision.reply))
        if decision.close is not None:
            self.close_now(decision.close)

    # picows callbacks ---------------------------------------------------------------------

    def on_ws_connected(self, transport: Any) -> None:
        self.ws = transport
        if not self.refusal.admit:
            self.act(self.refusal)
            return
        if self.close_asked is not None:
            self.close_now(self.close_asked)
            return
        for text in self.handshake_done():
            self.push_text(text)
        self.spawn(self._opened())

    async def _opened(self) -> None:
        self.act(await self.lifecycle.opened())
        # Handled outside this task: each frame is handled in this socket's context, which
        # this task is running in (a context cannot be entered twice).
        loop = asyncio.get_running_loop()
        loop.call_soon(self._release_held, context=contextvars.Context())

    def _release_held(self) -> None:
        held, self.held = self.held or [], None
        if self.held_bytes:
            self.held_bytes = 0
            self.connection.resources.set_inbox(0)
        for text, data in held:
            self.handle(text, data)
        # Not while a held frame over the rate has the client resting: flow control reads it
        # again when the rest is over.
        if held and not self.closing and not self.flow.not_reading:
            self.tcp.resume_reading()

    def on_ws_frame(self, transport: Any, frame: Any) -> None:
        kind = frame.msg_type
        if frame.rsv1 or frame.rsv2 or frame.rsv3:  # no extension was negotiated
            self.close_now(PROTOCOL_ERROR, "reserved bits set")
        elif kind == TEXT and frame.fin and self.parts is None:  # nearly every frame
            try:
                text = frame.get_payload_as_utf8_text()
            except UnicodeDecodeError:
                self._invalid_text()
                return
            self.received(text, None)
        elif kind == WSMsgType.CLOSE:
            self._peer_closed(frame)
        elif kind == TEXT or kind == WSMsgType.BINARY:
            if self.parts is not None:
                self.close_now(PROTOCOL_ERROR, "a new message inside a fragmented one")
            elif frame.fin:
                if kind == WSMsgType.BINARY:
                    self.received(None, frame.get_payload_as_bytes())
                else:
                    self._text(frame.get_payload_as_bytes())
            else:
                self.parts, self.text_parts = [], kind == WSMsgType.TEXT
                self._fragment(frame)
        elif kind == WSMsgType.CONTINUATION:
            if self.parts is None:
                self.close_now(PROTOCOL_ERROR, "a continuation without a message")
            else:
                self._fragment(frame)

    def _fragment(self, frame: Any) -> None:
        parts = self.parts
        assert parts is not None
        parts.append(frame.get_payload_as_bytes())
        if sum(map(len, parts)) > wscommands_settings.MAX_MESSAGE_SIZE:
            self.parts = None
            self.act(self.guard.check(None, b"".join(parts)))  # over MAX_MESSAGE_SIZE: 4413
        elif frame.fin:
            self.parts = None
            data = b"".join(parts)
            self._text(data) if self.text_parts else self.received(None, data)

    def _text(self, payload: bytes) -> None:
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            self._invalid_text()
            return
        self.received(text, None)

    def _invalid_text(self) -> None:
        metrics.frame_refused("invalid_utf8")
        self.close_now(INVALID_TEXT, "text frames are UTF-8")

    def received(self, text: str | None, data: bytes | None) -> None:
        """A whole message: handled now, or held (and reading paused) while opening."""
        if self.held is not None:
            self.held.append((text, data))
            self.held_bytes += frame_size(text, data)
            # Over the process's budget, the account cuts the heaviest connection off.
            if not self.connection.resources.set_inbox(self.held_bytes):
                # Cut off (its close is on its way): nothing more of it is kept or read.
                self.held.clear()
                self.tcp.pause_reading()
                return
            if len(self.held) >= wscommands_settings.MAX_INBOX:
                self.tcp.pause_reading()
            return
        self.handle(text, data)

    def handle(self, text: str | None, data: bytes | None) -> None:
        """What the endpoint decides about one message, carried out."""
        decision = self.context.run(self.frame, text, data)
        if decision is not ADMIT:
            self.act(decision)

    def _peer_closed(self, frame: Any) -> None:
        """Answer a close frame with the same code (1000 for none, 1002 for an invalid one)."""
        if frame.payload_size == 0:
            self.close_code, answer = 1005, 1000
        else:
            code = int(frame.get_close_code())
            valid = frame.payload_size >= 2 and code in _PEER_CODES
            self.close_code = answer = code if valid else PROTOCOL_ERROR
        self.closing_now()
        if not self.ws.is_close_frame_sent:
            self.ws.send_close(answer)
        self.ws.disconnect()

    def on_ws_disconnected(self, transport: Any) -> None:
        self.closing_now()  # nothing more is written to a socket that is gone
        self.spawn(self.finish(self.close_code))

    def pause_writing(self) -> None:
        """Writes just queue: flow control cuts off a client that does not read."""

    def resume_writing(self) -> None:
        """See :meth:`pause_writing`."""
