"""The WebSocket consumer: adapts ASGI/Channels events to the connection's parts.

It only translates: the endpoint decides (:mod:`.endpoint`: limits, life cycle, request
queue), and this class sends and closes as it says. Subclass it and route it like any
Channels consumer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer

from .._internal.compat import unwrap_send
from .._internal.threads import sweep_due, sweep_old_connections
from ..observability import metrics
from ..wire.jsoncodec import decode, encode
from ..wire.protocol import ADMIT, Decision
from .endpoint import Endpoint


class CommandConsumer(Endpoint, AsyncJsonWebsocketConsumer):
    """Dispatches JSON command requests to registered commands (see docs/protocol.md).

    Frames are handled by :meth:`receive` (``receive_json`` is not called). Channels'
    ``type`` -> handler dispatch of channel-layer messages is off (``channel_layer_alias =
    None``): the process's hub receives for every connection (see docs/api.md).
    ``registry`` and ``connection_class`` (from :class:`~.endpoint.Endpoint`) may be set by
    a subclass.
    """

    #: No channel-layer channel per connection: the process's Hub receives for all of them.
    #: (Channels' default would also crash every consumer with 1011 when Redis goes down.)
    channel_layer_alias = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Channels' ``AsyncConsumer.__call__`` for a consumer with one source, the client.

        Channels waits on its sources with ``await_many_dispatch``: a new task and an
        ``asyncio.wait`` per message, about a seventh of a request's cost under uvicorn. With
        no channel layer (``channel_layer_alias = None``) the client is the only source, so
        its messages are awaited directly. A subclass that sets a channel layer gets
        Channels' loop back.
        """
        if self.channel_layer_alias is not None:
            await super().__call__(scope, receive, send)
            return
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        # Frames go straight to the endpoint (what dispatch and receive do, without their two
        # coroutines per frame) unless a subclass overrides either.
        direct = type(self).dispatch is CommandConsumer.dispatch and (
            type(self).receive is CommandConsumer.receive
        )
        try:
            while True:
                message = await receive()
                if direct and message["type"] == "websocket.receive":
                    if sweep_due():
                        await sweep_old_connections()
                    decision = self.frame(message.get("text"), message.get("bytes"))
                    if decision is not ADMIT:
                        await self._act(decision)
                else:
                    await self.dispatch(message)
                # One frame per turn of the event loop: ``receive`` returns without yielding
                # while frames are queued, and a client with many queued must not hold the
                # loop for all of them (tests/test_fairness.py).
                await asyncio.sleep(0)
        except StopConsumer:
            pass

    async def connect(self) -> None:
        # Text frames skip the layers of ``send`` that do nothing for them: Channels' session
        # wrapper saves the session only for ``http.response.start`` yet reads it on every
        # message, and Channels' two ``send`` methods only build the message. A subclass
        # that overrides ``send`` keeps having it called.
        self._write: Callable[[dict[str, Any]], Awaitable[None]] = (
            unwrap_send(self.base_send)
            if type(self).send is AsyncWebsocketConsumer.send
            else self._write_through_send
        )
        self.prepare(send=self.base_send)
        decision = await self.enter()
        await self.accept()  # also when refused: the client sees why, not a bare HTTP 403
        if not decision.admit:
            await self._act(decision)
            return
        for text in self.handshake_done():
            await self.send(text_data=text)
        await self._act(await self.lifecycle.opened())

    async def push_text(self, text: str) -> None:
        """Send JSON text to the client (dropped once the connection is closing)."""
        if self.may_push(text):
            await self._write({"type": "websocket.send", "text": text})
            metrics.frame_sent(text)

    async def _write_through_send(self, message: dict[str, Any]) -> None:
        """Write a ``websocket.send`` message through :meth:`send` (see :meth:`connect`)."""
        await self.send(text_data=message["text"])

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        self.closing_now()
        await super().close(code, reason)

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
        # threads.sweep_old_connections) and go straight to receive (websocket_receive only
        # unpacks them); connect and disconnect go through Channels as before.
        if message["type"] == "websocket.receive":
            if sweep_due():
                await sweep_old_connections()
            await self.receive(message.get("text"), message.get("bytes"))
        else:
            await super().dispatch(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        decision = self.frame(text_data, bytes_data)
        if decision is not ADMIT:
            await self._act(decision)

    async def disconnect(self, code: int) -> None:
        await self.finish(code)

    # JSON (used by subclasses calling send_json) ------------------------------------------

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        return decode(text_data)

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return encode(content)
