"""The WebSocket consumer: adapts ASGI/Channels events to the connection's parts.

It only translates: limits decide (:mod:`.limits`, :mod:`.flow`), the life cycle opens and
closes (:mod:`.lifecycle`), the request queue schedules (:mod:`.requestqueue`), and this
class sends and closes as they say. Subclass it and route it like any Channels consumer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .._internal.fairpool import use_share
from .._internal.threads import sweep_old_connections
from ..commands.registry import Registry, registry
from ..conf import wscommands_settings
from ..connection.connection import Connection
from ..guards.flow import FlowControl
from ..guards.limits import FrameGuard
from ..observability import logs, metrics
from ..wire.codes import CloseCode
from ..wire.exceptions import InvalidJSON, InvalidRequest, ProtocolError, Unavailable
from ..wire.jsoncodec import decode, encode
from ..wire.protocol import ADMIT, Decision, parse_frame
from .lifecycle import ConnectionLifecycle
from .requestqueue import RequestQueue

logger = logging.getLogger("wscommands.connection")

#: The metrics reason of a frame refused for a limit (the ``details.limit`` it names).
_LIMIT_REASONS = {
    "MAX_JSON_DEPTH": "too_deep",
    "MAX_INTEGER_DIGITS": "too_long_integer",
    "MAX_COMMANDS_PER_REQUEST": "too_many_commands",
}


class CommandConsumer(AsyncJsonWebsocketConsumer):
    """Dispatches JSON command requests to registered commands (see docs/protocol.md).

    Frames are handled by :meth:`receive` (``receive_json`` is not called). Channels'
    ``type`` -> handler dispatch of channel-layer messages is off (``channel_layer_alias =
    None``): the process's hub receives for every connection (see docs/api.md).
    """

    #: Where commands and hooks are looked up (a subclass may serve its own Registry).
    registry: Registry = registry
    #: The class of the object handed to commands.
    connection_class: type[Connection] = Connection
    #: No channel-layer channel per connection: the process's Hub receives for all of them.
    #: (Channels' default would also crash every consumer with 1011 when Redis goes down.)
    channel_layer_alias = None

    async def connect(self) -> None:
        self.accepted = False
        self.closing = False
        self.closed = False
        self._backlog: list[str] = []  # pushes made before the handshake completes
        self.connection = self.connection_class(self)
        # Every sync call made for this connection (from this task and the tasks it starts)
        # counts against its share of the worker threads.
        use_share(self.connection.worker_share)
        logs.bind(self.connection)
        self.guard = FrameGuard()
        self.flow = FlowControl(self.base_send, self.connection.resources)
        self.requests = RequestQueue(self.connection, self.registry, self.push_text, self.close)
        self.lifecycle = ConnectionLifecycle(self.connection, self.registry)
        decision = self.lifecycle.admit()
        if not decision.admit:
            await self.accept()  # so the client sees why, instead of a bare HTTP 403
            await self._act(decision)
            return
        try:
            await self.lifecycle.register()
        except Unavailable:  # the process cannot serve without its message layer: retry later
            await self.accept()
            await self.close(CloseCode.SHUTTING_DOWN)
            return
        await self.accept()
        self.accepted = True
        metrics.connection_opened()
        for text in self._backlog:
            await self.send(text_data=text)
        self._backlog.clear()
        await self._act(await self.lifecycle.opened())

    async def push_text(self, text: str) -> None:
        """Send JSON text to the client (dropped once the connection is closing: a client cut
        off for not reading must not hold up each later fan-out too)."""
        if self.closed or self.closing:
            return
        if not self.accepted:
            self._backlog.append(text)
            return
        if not self.flow.writable():
            return
        await self.send(text_data=text)
        metrics.frame_sent(text)

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        self.closing = True
        self.requests.halt()
        await super().close(code, reason)

    def cut_off(self) -> None:
        """Drop this connection: it holds too much, or keeps asking for what it is refused.

        A client with output waiting that it does not read cannot read a close frame either:
        under daphne its socket is aborted; otherwise it is closed with 4429.
        """
        if self.closed or self.closing:
            return
        if not self.flow.abort_if_backlogged():
            self._cut_task = asyncio.ensure_future(self.close(CloseCode.TOO_MANY_REQUESTS))

    async def _act(self, decision: Decision) -> None:
        """Carry out a guard's or the life cycle's decision: rest, reply, then close."""
        if decision.rest:
            self.flow.rest(decision.rest)
        if decision.reply is not None:
            await self.push_text(encode(decision.reply))
        if decision.close is not None:
            await self.close(decision.close)

    # Frames -------------------------------------------------------------------------------

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Frames skip Channels' per-message trip to the thread-sensitive thread (see
        # threads.sweep_old_connections); connect and disconnect go through it as before.
        if message["type"] == "websocket.receive":
            await sweep_old_connections()
            # No yield of our own between frames: Channels' dispatch loop waits on a new task
            # for each message, so a client with many frames queued never holds the event
            # loop for more than one (tests/test_fairness.py).
            await self.websocket_receive(message)
        else:
            await super().dispatch(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        metrics.frame_received(text_data, bytes_data)
        if self.closing:
            return
        self.flow.frame_taken()
        decision = self.guard.check(text_data, bytes_data)
        if not decision.admit:
            await self._act(decision)
            return
        if text_data is None:
            metrics.frame_refused("binary")
            error = InvalidRequest("binary frames are not supported: send JSON text")
            await self._act(self.guard.refused(error))
            return
        s = wscommands_settings
        try:
            request = parse_frame(text_data, s.MAX_JSON_DEPTH, s.MAX_COMMANDS_PER_REQUEST)
        except InvalidJSON as exc:
            if self.requests.has_default:
                await self._act(self.requests.submit_default(text_data))
            else:
                metrics.frame_refused(exc.code)
                await self._act(self.guard.refused(exc))
            return
        except ProtocolError as exc:
            limit = (exc.details or {}).get("limit")
            metrics.frame_refused(_LIMIT_REASONS.get(limit or "", exc.code))
            await self._act(self.guard.refused(exc))
            return
        self.guard.accepted()
        decision = self.requests.submit(request, len(text_data))
        if decision is not ADMIT:
            await self._act(decision)

    # Disconnect ---------------------------------------------------------------------------

    async def disconnect(self, code: int) -> None:
        self.lifecycle.release()
        self.connection.resources.close()
        if not self.lifecycle.registered:
            return
        if self.accepted:
            metrics.connection_closed(code)
        self.closed = True
        await self.requests.stop()
        await self.lifecycle.teardown()

    # JSON (used by subclasses calling send_json) ------------------------------------------

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        return decode(text_data)

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return encode(content)
