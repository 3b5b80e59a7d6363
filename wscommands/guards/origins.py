"""Origin checks for the WebSocket handshake (cross-site WebSocket hijacking).

Browsers send ``Origin`` with every WebSocket handshake, and the handshake carries the
browser's cookies whatever page opened it: a page that is not ours must not get a connection
acting as our user. A refused handshake gets HTTP 403 before it opens. Three policies
(``WSCOMMANDS["ORIGIN_POLICY"]`` and ``WSCOMMANDS["ALLOWED_ORIGINS"]``):

- ``"same-origin"`` (default), as OWASP recommends: the Origin must be the page's own, the
  same scheme, host and port as the handshake itself (``Host`` header, one of
  ``settings.ALLOWED_HOSTS``; scheme ``https`` for ``wss``, or behind a proxy that Django's
  ``SECURE_PROXY_SSL_HEADER`` names). ``http://example.com:6666`` or ``https://`` pages of
  an allowed host are refused when the socket is ``ws://example.com``.
- ``ALLOWED_ORIGINS`` set: exactly those ``scheme://host[:port]`` triples (default ports
  filled in, case-insensitive), nothing else, whatever the policy.
- ``"allowed-hosts"``: Channels' AllowedHostsOriginValidator, any scheme and port of a host
  of ``ALLOWED_HOSTS`` (lax: another site's page on another port of the same host passes).

A *missing* Origin is let in by default (``WSCOMMANDS["ALLOW_MISSING_ORIGIN"]``): browsers
always send one, so its absence means a program, and a program carries no victim's cookies
(only its own), so refusing it would stop no hijacking while breaking non-browser clients.
``null`` (sandboxed frames, ``file://`` pages) and malformed origins are always refused.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import ParseResult, urlparse

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from ..conf import wscommands_settings

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
#: ``WSCOMMANDS["ORIGIN_POLICY"]`` values.
SAME_ORIGIN = "same-origin"
ALLOWED_HOSTS = "allowed-hosts"
ORIGIN_POLICIES = (SAME_ORIGIN, ALLOWED_HOSTS)


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


def request_host(scope: dict[str, Any]) -> str | None:
    """The host a request names, as Django's ``HttpRequest.get_host()`` reads it: the
    ``Host`` header (``X-Forwarded-Host`` with ``USE_X_FORWARDED_HOST``), lower-cased, port
    included; None unless it is one of ``ALLOWED_HOSTS`` (Django answers 400 then)."""
    return _allowed_host(_headers(scope))


def handshake_origin(scope: dict[str, Any]) -> tuple[str, str, int] | None:
    """The origin of the page a same-origin client would be on: the handshake's own.

    Its host is :func:`request_host`, which must be one of ``ALLOWED_HOSTS`` (else a rebound
    DNS name would be its own origin); None when it is not.
    """
    headers = _headers(scope)
    host = _allowed_host(headers)
    if host is None:
        return None
    scheme = "https" if _is_secure(scope, headers) else "http"
    return normalize_origin(f"{scheme}://{host}")


def origin_allowed(scope: dict[str, Any], allow_missing: bool | None = None) -> bool:
    """Whether a WebSocket handshake's Origin passes the configured policy."""
    origins = _headers(scope).get(b"origin")
    if origins is None:
        return wscommands_settings.ALLOW_MISSING_ORIGIN if allow_missing is None else allow_missing
    if len(origins) != 1:  # several Origin headers: no browser sends that
        return False
    try:
        origin = normalize_origin(origins[0].decode("ascii"))
    except UnicodeDecodeError:
        return False
    if origin is None:  # "null", malformed
        return False
    listed = wscommands_settings.ALLOWED_ORIGINS
    if listed is not None:
        return origin in {normalize_origin(o) for o in listed}
    if wscommands_settings.ORIGIN_POLICY == ALLOWED_HOSTS:
        return validate_host(origin[1], _allowed_hosts())
    return origin == handshake_origin(scope)


class HostOriginValidator:
    """ASGI middleware: refuses (HTTP 403) handshakes whose Origin the policy refuses.

    The policy is the module's (same-origin by default); ``allow_missing`` overrides
    ``WSCOMMANDS["ALLOW_MISSING_ORIGIN"]``. Settings are read per handshake, so tests can
    change them.
    """

    def __init__(self, application: Any, allow_missing: bool | None = None):
        self.application = application
        self.allow_missing = allow_missing

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            raise ValueError("HostOriginValidator only guards WebSocket connections")
        if origin_allowed(scope, self.allow_missing):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)


def _headers(scope: dict[str, Any]) -> dict[bytes, list[bytes]]:
    headers: dict[bytes, list[bytes]] = {}
    for name, value in scope.get("headers", ()):
        headers.setdefault(name.lower(), []).append(value)
    return headers


def _allowed_host(headers: dict[bytes, list[bytes]]) -> str | None:
    """:func:`request_host` of a request's headers, already by name."""
    host = headers.get(b"host", [b""])[-1]
    if settings.USE_X_FORWARDED_HOST and b"x-forwarded-host" in headers:
        host = headers[b"x-forwarded-host"][-1].split(b",")[0].strip()
    try:
        host_text = host.decode("ascii").lower()
    except UnicodeDecodeError:
        return None
    domain, _port = split_domain_port(host_text)
    if not domain or not validate_host(domain, _allowed_hosts()):
        return None
    return host_text


def _allowed_hosts() -> list[str]:
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:  # what Django's HTTP side allows then
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return allowed


def _is_secure(scope: dict[str, Any], headers: dict[bytes, list[bytes]]) -> bool:
    """TLS to the client: ``wss`` in the scope, or the proxy header Django is told to trust."""
    if scope.get("scheme") == "wss":
        return True
    proxy = settings.SECURE_PROXY_SSL_HEADER  # e.g. ("HTTP_X_FORWARDED_PROTO", "https")
    if not proxy:
        return False
    name = proxy[0].removeprefix("HTTP_").replace("_", "-").lower().encode("latin1")
    values = headers.get(name)
    return (
        values is not None
        and bool(values)
        and values[-1].split(b",")[0].strip().decode("latin1") == proxy[1]
    )
