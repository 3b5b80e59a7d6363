"""One socket's server-independent half, shared by every server adapter.

The Channels consumer (:mod:`.consumer`, under daphne or uvicorn) and the engine
(:mod:`wscommands.engine`, on picows) each read frames and write text their own way; what a
frame means, when a connection is admitted, what a push may be written and what a disconnect
undoes is decided here, once. Each method only decides or changes state and returns a
:class:`~wscommands.wire.protocol.Decision`; the adapter carries it out (send, rest, close).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from .._internal.compat import ServerSocket
from .._internal.fairpool import use_share
from ..commands.registry import Registry, registry
from ..conf import wscommands_settings
from ..connection.connection import Connection
from ..guards.flow import FlowControl
from ..guards.limits import FrameGuard, frame_size
from ..observability import logs, metrics
from ..wire.codes import CloseCode
from ..wire.exceptions import InvalidJSON, InvalidRequest, ProtocolError, Unavailable
from ..wire.protocol import ADMIT, Decision, parse_frame, refuse
from .lifecycle import ConnectionLifecycle
from .requestqueue import RequestQueue

#: The metrics reason of a frame refused for a limit (the ``details.limit`` it names).
_LIMIT_REASONS = {
    "MAX_JSON_DEPTH": "too_deep",
    "MAX_INTEGER_DIGITS": "too_long_integer",
    "MAX_COMMANDS_PER_REQUEST": "too_many_commands",
}


class Endpoint:
    """The parts of one socket (connection, guards, request queue, life cycle) and the
    decisions on them; a server adapter subclasses it and supplies ``push_text`` and
    ``close`` (the :class:`~wscommands.connection.transport.Transport` of its socket)."""

    #: Where commands and hooks are looked up (a subclass may serve its own Registry).
    registry: Registry = registry
    #: The class of the object handed to commands.
    connection_class: type[Connection] = Connection
    #: The handshake's ASGI scope (or the engine's ASGI-like one).
    scope: dict[str, Any]

    if TYPE_CHECKING:  # supplied by the adapter (not defined here: nothing shadows its own)

        def push_text(self, text: str) -> Awaitable[None]:
            """Write one text frame (see Transport)."""
            ...

        async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
            """Close the socket with ``code`` (see Transport)."""
            ...

    def prepare(self, send: Any = None, socket: ServerSocket | None = None) -> None:
        """Build the parts, in the task (and context) that will handle this socket's frames.

        ``send`` is the ASGI send callable flow control finds the server's socket behind;
        an adapter that holds its socket passes it as ``socket`` instead.
        """
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
        self.flow = FlowControl(send, self.connection.resources, socket)
        self.requests = RequestQueue(self.connection, self.registry, self.push_text, self.close)
        self.lifecycle = ConnectionLifecycle(self.connection, self.registry)

    async def enter(self) -> Decision:
        """Admit (shutdown, caps) and register the connection, before the handshake
        completes; a refusal is carried out after the accept, so the client sees its code."""
        decision = self.lifecycle.admit()
        if not decision.admit:
            return decision
        try:
            await self.lifecycle.register()
        except Unavailable:  # the process cannot serve without its message layer: retry later
            return refuse(close=CloseCode.SHUTTING_DOWN)
        return ADMIT

    def handshake_done(self) -> list[str]:
        """The handshake has completed: the pushes held back until now, to write in order."""
        self.accepted = True
        metrics.connection_opened()
        backlog, self._backlog = self._backlog, []
        return backlog

    def may_push(self, text: str) -> bool:
        """Whether ``text`` may be written now: dropped once the connection is closing (a
        client cut off for not reading must not hold up each later fan-out too), held back
        before the handshake completes, refused over the outgoing backlog."""
        if self.closed or self.closing:
            return False
        if not self.accepted:
            self._backlog.append(text)
            return False
        return self.flow.writable()

    def cut_off(self) -> None:
        """Drop this connection: it holds too much, or keeps asking for what it is refused.

        A client with output waiting that it does not read cannot read a close frame either:
        its socket is aborted when the server's socket is reachable; otherwise it is closed
        with 4429.
        """
        if self.closed or self.closing:
            return
        if not self.flow.abort_if_backlogged():
            self._cut_task = asyncio.ensure_future(self.close(CloseCode.TOO_MANY_REQUESTS))

    def closing_now(self) -> None:
        """The adapter is closing the socket: start no more requests."""
        self.closing = True
        self.requests.halt()

    def frame(self, text_data: str | None, bytes_data: bytes | None) -> Decision:
        """One frame received: checked, parsed and queued; what to do about it (ADMIT: nothing)."""
        size = frame_size(text_data, bytes_data)  # measured once for every use below
        metrics.frame_received(size)
        if self.closing:
            return ADMIT
        self.flow.frame_taken()
        decision = self.guard.check(text_data, bytes_data, size)
        if not decision.admit:
            return decision
        if text_data is None:
            metrics.frame_refused("binary")
            error = InvalidRequest("binary frames are not supported: send JSON text")
            return self.guard.refused(error)
        s = wscommands_settings
        try:
            request = parse_frame(text_data, s.MAX_JSON_DEPTH, s.MAX_COMMANDS_PER_REQUEST)
        except InvalidJSON as exc:
            if self.requests.has_default:
                return self.requests.submit_default(text_data, size)
            metrics.frame_refused(exc.code)
            return self.guard.refused(exc)
        except ProtocolError as exc:
            limit = (exc.details or {}).get("limit")
            metrics.frame_refused(_LIMIT_REASONS.get(limit or "", exc.code))
            return self.guard.refused(exc)
        self.guard.accepted()
        return self.requests.submit(request, size)

    async def finish(self, code: int) -> None:
        """The socket has closed (``code``): finish the requests, run the hooks, unregister."""
        self.lifecycle.release()
        self.connection.resources.close()
        if not self.lifecycle.registered:
            return
        if self.accepted:
            metrics.connection_closed(code)
        self.closed = True
        await self.requests.stop()
        await self.lifecycle.teardown()
