"""ASGI entry point, as README.md "Your first command" writes it."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "minisite.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from wscommands.origins import HostOriginValidator  # noqa: E402
from wscommands.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": HostOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
