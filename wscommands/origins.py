"""Origin checks for the WebSocket handshake.

Browsers always send ``Origin``; a page on another site must not be able to open a
connection that carries our users' cookies (cross-site WebSocket hijacking). Programs that are
not browsers (test clients, services, other people's clients written from PROTOCOL.md) usually
send no ``Origin`` at all and carry no ambient cookies, so a *missing* Origin is allowed by
default while a foreign one, or ``null``, is refused with HTTP 403 before the handshake opens.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import ParseResult

from channels.security.websocket import OriginValidator
from django.conf import settings


class HostOriginValidator(OriginValidator):
    """Like Channels' AllowedHostsOriginValidator, with a policy for a missing Origin.

    Allowed origins are the host names of ``settings.ALLOWED_HOSTS`` (plus localhost when
    DEBUG is on). ``allow_missing`` (default True) lets clients that send no Origin header in.
    """

    def __init__(self, application: Any, allow_missing: bool = True):
        allowed_hosts = list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not allowed_hosts:
            allowed_hosts = ["localhost", "127.0.0.1", "[::1]"]
        super().__init__(application, allowed_hosts)
        self.allow_missing = allow_missing

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        if parsed_origin is None:
            return self.allow_missing
        return self.validate_origin(parsed_origin)
