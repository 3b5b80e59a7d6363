"""The WebSocket consumer: frames in, requests scheduled, replies out.

Thin on purpose: parsing lives in :mod:`.protocol`, running commands in :mod:`.execution`,
fan-out in :mod:`.messaging` and :mod:`.hub`. Subclass it and route it like any Channels consumer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from . import lifecycle, limits, logs, metrics, resume
from .conf import wscommands_settings
from .connection import Connection
from .exceptions import InvalidJSON, InvalidRequest, ProtocolError
from .execution import DEFAULT, call, run_default, run_request
from .hub import get_hub
from .idempotency import run_once
from .protocol import Request, decode, encode, encode_reply, error_reply, parse_frame
from .registry import Registry, registry
from .threads import sweep_old_connections, use_share

logger = logging.getLogger("wscommands.connection")

#: Close code when an on_connect hook fails.
SERVER_ERROR = 4500
#: Seconds a running request may go on after its client has gone.
DISCONNECT_GRACE = 5.0

#: The metrics reason of a frame refused for a limit (the ``details.limit`` it names).
_LIMIT_REASONS = {
    "MAX_JSON_DEPTH": "too_deep",
    "MAX_INTEGER_DIGITS": "too_long_integer",
    "MAX_COMMANDS_PER_REQUEST": "too_many_commands",
}

Reply = tuple[dict[str, Any] | None, int | None]


class CommandConsumer(AsyncJsonWebsocketConsumer):
    """Dispatches JSON command requests to registered commands (see docs/protocol.md)."""

    #: Where commands and hooks are looked up.
    registry: Registry = registry
    #: The class of the object handed to commands.
    connection_class: type[Connection] = Connection
    #: No channel-layer channel per connection: the process's Hub receives for all of them.
    #: (Channels' default would also crash every consumer with 1011 when Redis goes down.)
    channel_layer_alias = None

    async def connect(self) -> None:
        self.connection = self.connection_class(self)
        # Every sync call made for this connection (from this task and the tasks it starts)
        # counts against its share of the worker threads.
        use_share(self.connection.worker_share)
        logs.bind(self.connection)
        self._accepted = False
        self._closed = False
        self._closing = False
        self._backlog: list[str] = []
        self._serial: asyncio.Task | None = None
        self._pending: set[asyncio.Task] = set()
        self._running: set[asyncio.Task] = set()
        self._guard = limits.FrameGuard(self)
        if not await limits.admit_connection(self) or not await lifecycle.admit_connection(self):
            return
        resume.attach(self.connection)
        # Register with the hub before accepting: a client that sees the handshake
        # complete receives every broadcast sent after that moment.
        self.connection.id = await get_hub().add(self.connection)
        self._registered = True
        if self.connection.is_authenticated():
            await self.connection._set_user_pk(self.connection.user.pk)
        get_hub().presence.connected(self.connection)  # recorded in the background
        await self.accept()
        self._accepted = True
        metrics.connection_opened()
        for text in self._backlog:
            await self.send(text_data=text)
        self._backlog.clear()
        await resume.start(self.connection)
        for hook in self.registry.connect_hooks:
            try:
                await call(hook, self.connection)
            except Exception:
                logger.exception("on_connect hook %r raised; closing with 4500", hook)
                await self.close(SERVER_ERROR)
                return

    async def push_text(self, text: str) -> None:
        """Send JSON text to the client (dropped once the connection has closed)."""
        if self._closed:
            return
        if not self._accepted:
            self._backlog.append(text)
            return
        if self._guard.over_backlog():
            return
        await self.send(text_data=text)
        metrics.frame_sent(text)

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        self._closing = True
        await super().close(code, reason)

    def cut_off(self) -> None:
        """Drop this connection: it holds too much, or keeps asking for what it is refused.

        A client with output waiting that it does not read cannot read a close frame either:
        under daphne its socket is aborted; otherwise it is closed with 4429.
        """
        if self._closed or self._closing:
            return
        if not self._guard.abort_if_backlogged():
            self._cut_task = asyncio.ensure_future(self.close(limits.TOO_MANY))

    # Frames -------------------------------------------------------------------------------

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Frames skip Channels' per-message trip to the thread-sensitive thread (see
        # threads.sweep_old_connections); connect and disconnect go through it as before.
        if message["type"] == "websocket.receive":
            await sweep_old_connections()
            await self.websocket_receive(message)
            # Channels takes the next frame from the queue without yielding: a client with
            # many frames waiting would hold the event loop for all of them. Let the others
            # run between two frames.
            await asyncio.sleep(0)
        else:
            await super().dispatch(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        metrics.frame_received(text_data, bytes_data)
        if self._closing or not await self._guard.admit(text_data, bytes_data):
            return
        if text_data is None:
            metrics.frame_refused("binary")
            await self._send_error(
                InvalidRequest("binary frames are not supported: send JSON text")
            )
            return
        s = wscommands_settings
        try:
            request = parse_frame(text_data, s.MAX_JSON_DEPTH, s.MAX_COMMANDS_PER_REQUEST)
        except InvalidJSON as exc:
            default = self.registry.get(DEFAULT)
            if default is None:
                metrics.frame_refused(exc.code)
                await self._send_error(exc)
            else:
                await self._schedule(
                    lambda: self._run_default(default, text_data),
                    concurrent=False,
                    size=len(text_data),
                )
            return
        except ProtocolError as exc:
            limit = (exc.details or {}).get("limit")
            metrics.frame_refused(_LIMIT_REASONS.get(limit, exc.code))
            await self._send_error(exc)
            return
        self._guard.accepted()
        if resume.is_resume(request.commands):
            await self._schedule(
                lambda: self._resume(request), concurrent=False, request_id=request.request_id
            )
            return
        concurrent = bool(request.commands) and all(
            (cmd := self.registry.get(name)) is not None and cmd.concurrent
            for name, _ in request.commands
        )
        await self._schedule(
            lambda: self._run(request),
            concurrent=concurrent,
            request_id=request.request_id,
            size=len(text_data),
        )

    async def _run(self, request: Request) -> Reply:
        # A request with an idempotency key runs once; its retries replay the recorded reply.
        return await run_once(
            self.connection, request, lambda: run_request(self.connection, request, self.registry)
        )

    async def _resume(self, request: Request) -> Reply:
        await resume.handle(self.connection, request.request_id, request.commands[0][1])
        return None, None

    async def _run_default(self, default: Any, text: str) -> Reply:
        return await run_default(self.connection, default, text), None

    async def _send_error(self, error: ProtocolError) -> None:
        await self.push_text(encode(error_reply(error)))
        await self._guard.refused()

    async def _schedule(
        self,
        run: Callable[[], Awaitable[Reply]],
        concurrent: bool,
        request_id: str | int | None = None,
        size: int = 0,
    ) -> None:
        """Start a request after every earlier non-concurrent request has finished.

        Waiting requests are bounded by count and by the size of their frames (budget.py).
        """
        resources = self.connection.resources
        refusal = resources.reserve_request(size)
        if refusal is not None:
            metrics.frame_refused("too_many_pending")
            logs.client_event("pending", "%s: refused", refusal.message)
            # The one reply this request gets: it carries the request_id clients match on.
            await self.push_text(encode(error_reply(refusal, request_id)))
            return
        task = asyncio.create_task(self._run_after(self._serial, run))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        # Its frame is held until the request is over (run, refused or cancelled).
        task.add_done_callback(lambda _: resources.release_request(size))
        if not concurrent:
            self._serial = task

    async def _run_after(
        self, previous: asyncio.Task | None, run: Callable[[], Awaitable[Reply]]
    ) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        if self._closed or self._closing:
            return
        task = asyncio.current_task()
        self._running.add(task)
        try:
            reply, close_code = await run()
            if reply is not None:
                await self.push_text(encode_reply(reply))
            if close_code is not None:
                await self.close(close_code)
        except Exception as exc:  # run_request catches command errors; this is a bug of ours
            logs.unexpected("request", "request failed", exc=exc)
        finally:
            self._running.discard(task)

    # Disconnect ---------------------------------------------------------------------------

    async def disconnect(self, code: int) -> None:
        limits.release_connection(self)
        self.connection.resources.close()
        if not getattr(self, "_registered", False):
            return
        if self._accepted:
            metrics.connection_closed(code)
        self._closed = True
        for task in self._pending - self._running:
            task.cancel()
        if self._running:
            _, late = await asyncio.wait(self._running, timeout=DISCONNECT_GRACE)
            for task in late:
                task.cancel()
        self.connection._cancel_calls()
        for hook in self.registry.disconnect_hooks:
            try:
                await call(hook, self.connection)
            except Exception:
                logger.exception("on_disconnect hook %r raised", hook)
        get_hub().presence.disconnected(self.connection)
        await get_hub().remove(self.connection)

    # JSON (used by subclasses calling send_json / receive_json) ----------------------------

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        return decode(text_data)

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return encode(content)
