"""The baseline: a bare ``AsyncJsonWebsocketConsumer``, as a Channels user would write it.

Served by the same server (daphne or uvicorn), with the same settings, middleware and channel
layer as the example project, so the benchmark compares wscommands with plain Channels and
nothing else. It speaks the same wire format for what the benchmark sends:

- ``{"echo": {"text": ...}, "request_id": n}`` -> ``{"echo": {"text": ...}, "request_id": n}``
- ``{"square": n}`` and ``{"sleep": {"seconds": s}}``: sync work through Channels'
  ``database_sync_to_async`` (the documented way; thread-sensitive by default).

Every consumer joins the channel-layer group :data:`GROUP` (one ``group_add`` per consumer),
and a ``group_send`` of ``{"type": "bench.message", "text": ...}`` to it is a broadcast.

Run: ``daphne bench.baseline_asgi:application``.
"""

import os
import time

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.db import database_sync_to_async  # noqa: E402
from channels.generic.websocket import AsyncJsonWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

#: The channel-layer group every baseline consumer joins.
GROUP = "bench.all"


def _square(n):
    return n * n


def _sleep(seconds):
    time.sleep(seconds)
    return seconds


class BaselineConsumer(AsyncJsonWebsocketConsumer):
    """Echo, two sync commands and a group broadcast, with no framework around them."""

    async def connect(self):
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def receive_json(self, content, **kwargs):
        reply = {}
        if "echo" in content:
            reply["echo"] = {"text": content["echo"]["text"]}
        if "square" in content:
            reply["square"] = await database_sync_to_async(_square)(content["square"])
        if "sleep" in content:
            reply["sleep"] = await database_sync_to_async(_sleep)(content["sleep"]["seconds"])
        if "request_id" in content:
            reply["request_id"] = content["request_id"]
        await self.send_json(reply)

    async def bench_message(self, event):
        await self.send(text_data=event["text"])


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter([path("ws/", BaselineConsumer.as_asgi())]))
        ),
    }
)
