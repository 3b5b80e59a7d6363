"""ASGI application for the Autobahn conformance run: the example's ``echo`` as a raw echo.

Autobahn's cases send arbitrary text and binary messages and expect them back unchanged,
so each text frame is run through the example project's ``echo`` command (the same
execution path as ``{"echo": {"text": ...}}``) and its result is sent back as the frame;
binary frames are echoed as they are. Everything else (daphne, Channels' middleware, the
consumer's connect/disconnect handling) is the example project's.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.reliability.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from wscommands import CommandConsumer  # noqa: E402
from wscommands.guards.origins import HostOriginValidator  # noqa: E402
from wscommands.server.execution import run_request  # noqa: E402
from wscommands.wire.protocol import Request  # noqa: E402


class AutobahnEcho(CommandConsumer):
    """Sends every frame back unchanged, text frames by way of the ``echo`` command."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            await self.send(bytes_data=bytes_data)
            return
        request = Request([("echo", {"text": text_data})])
        reply, _ = await run_request(self.connection, request, self.registry)
        await self.send(text_data=reply["echo"]["text"])


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": HostOriginValidator(
            AuthMiddlewareStack(URLRouter([path("", AutobahnEcho.as_asgi())]))
        ),
    }
)
