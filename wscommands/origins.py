"""Origin checks for the WebSocket handshake.

Browsers always send ``Origin``; a page on another site must not be able to open a
connection that carries our users' cookies (cross-site WebSocket hijacking). Programs that are
not browsers (test clients, services, other people's clients written from PROTOCOL.md) usually
send no ``Origin`` at all and carry no ambient cookies, so a *missing* Origin is allowed by
default (``WSCOMMANDS["ALLOW_MISSING_ORIGIN"]``) while a foreign one, or ``null``, is refused
with HTTP 403 before the handshake opens.

Two policies:

- default: the host names of ``settings.ALLOWED_HOSTS``, as Channels'
  AllowedHostsOriginValidator does, which accepts *any scheme and port* for a host
  (``http://example.com:6666`` passes for ``example.com``);
- strict, when ``WSCOMMANDS["ALLOWED_ORIGINS"]`` lists origins: exactly those
  ``scheme://host[:port]`` triples (default ports filled in), nothing else.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import ParseResult, urlparse

from channels.security.websocket import OriginValidator
from django.conf import settings

from .conf import wscommands_settings

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def normalize_origin(origin: str | ParseResult) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an origin, default port filled in; None if malformed."""
    parsed = urlparse(origin) if isinstance(origin, str) else origin
    try:
        scheme, host, port = parsed.scheme.lower(), parsed.hostname, parsed.port
    except ValueError:  # a port that is not a number
        return None
    if not scheme or not host or parsed.path not in ("", "/") or parsed.username is not None:
        return None
    port = port if port is not None else _DEFAULT_PORTS.get(scheme)
    return (scheme, host, port) if port is not None else None


class HostOriginValidator(OriginValidator):
    """Refuses (HTTP 403) handshakes from origins that are not allowed.

    Allowed origins are the host names of ``settings.ALLOWED_HOSTS`` (plus localhost when
    DEBUG is on), or exactly ``WSCOMMANDS["ALLOWED_ORIGINS"]`` when that is set.
    ``allow_missing`` (default: ``WSCOMMANDS["ALLOW_MISSING_ORIGIN"]``) lets clients that
    send no Origin header in. Settings are read per handshake, so tests can change them.
    """

    def __init__(self, application: Any, allow_missing: bool | None = None):
        allowed_hosts = list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not allowed_hosts:
            allowed_hosts = ["localhost", "127.0.0.1", "[::1]"]
        super().__init__(application, allowed_hosts)
        self.allow_missing = allow_missing

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        if parsed_origin is None:
            if self.allow_missing is None:
                return bool(wscommands_settings.ALLOW_MISSING_ORIGIN)
            return self.allow_missing
        strict = wscommands_settings.ALLOWED_ORIGINS
        if strict is None:
            return self.validate_origin(parsed_origin)
        origin = normalize_origin(parsed_origin)
        return origin is not None and origin in {normalize_origin(o) for o in strict}
