"""URL patterns to include in a project's routing.

# asgi.py
from wscommands.routing import websocket_urlpatterns
URLRouter(websocket_urlpatterns)

# urls.py
path("", include("wscommands.urls"))
"""

from __future__ import annotations

from django.urls import path

from .server.consumer import CommandConsumer

websocket_urlpatterns = [path("ws/", CommandConsumer.as_asgi())]
