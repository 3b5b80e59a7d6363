"""The example project plus a gate, for the inbox backpressure tests: the ASGI application
(daphne), and the consumer the engine serves (``wscommands_engine --consumer
tests.reliability.gate_asgi.GatedConsumer``).

Under daphne a connection on ``/gate/`` handles a frame only when the test lets it
(``gate.set``, sent from an ordinary connection of the same process), so daphne's queue of its
frames fills while the test holds the gate, as it does behind any consumer slower than its
client. The engine has no such queue (it handles each frame as it reads it): its connection
on ``/ws/?gate=opening`` waits for the gate in an on_connect hook instead, and the frames its
client sends meanwhile wait in the engine, as they do behind any slow on_connect hook.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.reliability.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from wscommands import CommandConsumer, command, on_connect  # noqa: E402
from wscommands.guards.origins import HostOriginValidator  # noqa: E402
from wscommands.routing import websocket_urlpatterns  # noqa: E402


class Gate:
    """How many more frames gated connections may handle (None: any number)."""

    def __init__(self) -> None:
        self.allowance: int | None = None
        self.changed = asyncio.Event()
        self.handled = 0
        self.peak = 0
        self.consumers: list[CommandConsumer] = []
        self.opening: Any = None  # the engine's socket whose opening the gate holds

    async def turn(self) -> None:
        while self.allowance is not None and self.allowance <= 0:
            self.changed.clear()
            await self.changed.wait()
        if self.allowance is not None:
            self.allowance -= 1


gate = Gate()


class GatedConsumer(CommandConsumer):
    """Takes each frame from daphne's queue, then waits for the gate before handling it."""

    async def connect(self) -> None:
        await super().connect()
        gate.consumers.append(self)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await gate.turn()
        await super().receive(text_data, bytes_data)
        gate.peak = max(gate.peak, self.flow.socket.waiting_frames())


@on_connect
async def hold_opening(connection) -> None:
    """Open a connection made with ``?gate=opening`` only when the gate lets it."""
    if connection.scope["query_string"] == b"gate=opening":
        gate.opening = connection.consumer
        await gate.turn()


@command(name="gate.set")
async def set_gate(connection, allow: int | None):
    """Let gated connections handle ``allow`` more frames (None: open the gate)."""
    gate.allowance = allow
    gate.changed.set()


@command(name="gate.tick")
async def tick(connection, padding: str = ""):
    """One frame handled (sent without request_id: no reply)."""
    gate.handled += 1


@command(name="gate.state")
async def state(connection) -> dict[str, Any]:
    """The gated connection's flow control as the server sees it."""
    if gate.opening is not None:  # the engine: the frames it read while the socket opened
        socket = gate.opening
        return {
            "handled": gate.handled,
            "waiting": len(socket.held or ()),
            "paused": not socket.tcp.is_reading(),
        }
    flow = gate.consumers[-1].flow if gate.consumers else None
    return {
        "handled": gate.handled,
        "peak": gate.peak,
        "waiting": flow.socket.waiting_frames() if flow else None,
        "paused": flow.paused if flow else None,
    }


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": HostOriginValidator(
            AuthMiddlewareStack(
                URLRouter([path("gate/", GatedConsumer.as_asgi()), *websocket_urlpatterns])
            )
        ),
    }
)
