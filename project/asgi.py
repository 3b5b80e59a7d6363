"""ASGI entry point: ``daphne project.asgi:application`` (or uvicorn).

Origin check (HTTP 403 for any page but the site's own scheme, host and port, and for
``null``; clients that send no Origin, i.e. not browsers, are let in), then Channels' session
and auth middleware, then the router.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
# Set up Django before importing anything that touches models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from wscommands.guards.origins import HostOriginValidator  # noqa: E402
from wscommands.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": HostOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
