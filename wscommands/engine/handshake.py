"""The engine's handshake: the HTTP upgrade request as an ASGI-like scope, and its identity.

The scope has the keys the ASGI path's has (``type``, ``path``, ``query_string``,
``headers``, ``client``, ``server``, ``scheme``, ``cookies``, ``session``, ``user``), so the
same origin check (:func:`~wscommands.guards.origins.origin_allowed`), caps and commands
apply unchanged. The client address is the TCP peer's, or, when that peer is a trusted proxy
(``--forwarded-allow-ips``, as uvicorn's option of the same name), the last address in
``X-Forwarded-For`` that is not a trusted proxy itself.
"""

from __future__ import annotations

import ipaddress
from importlib import import_module
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote

from django.conf import settings
from django.contrib.auth import get_user
from django.http.cookie import parse_cookie

try:
    import h11
except ImportError:  # the "engine" extra; the engine says what to install
    h11 = None  # type: ignore[assignment]

#: Largest request head (request line and headers) read, in bytes, as picows allows.
MAX_HEAD = 16 * 1024

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class BadHandshake(Exception):
    """A handshake refused before it opens: ``status`` is the HTTP status answered."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class TrustedProxies:
    """The peers whose ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed."""

    def __init__(self, spec: str):
        self.everyone = spec.strip() == "*"
        self.networks: list[Network] = []
        for item in filter(None, (part.strip() for part in spec.split(","))):
            if item != "*":
                try:
                    self.networks.append(ipaddress.ip_network(item, strict=False))
                except ValueError as exc:
                    raise ValueError(f"--forwarded-allow-ips: {item!r} is not an address") from exc

    def __contains__(self, host: str) -> bool:
        if self.everyone:
            return True
        try:
            address: Address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def client(self, peer: str, forwarded_for: bytes | None) -> str:
        """The client's address: the peer's, or behind trusted proxies the forwarded one."""
        if forwarded_for is None or peer not in self:
            return peer
        hops = [h.strip() for h in forwarded_for.decode("latin-1").split(",") if h.strip()]
        for hop in reversed(hops):
            if hop not in self:
                return hop
        return hops[0] if hops else peer


def parse_head(head: bytes) -> tuple[str, bytes, list[tuple[bytes, bytes]]]:
    """``(method, target, headers)`` of a request head (h11 parses it); BadHandshake (400)
    for anything that is not one HTTP/1.1 request."""
    assert h11 is not None  # the engine checks h11 is installed first
    connection = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
    connection.receive_data(head)
    try:
        event = connection.next_event()
    except h11.RemoteProtocolError as exc:
        raise BadHandshake(400, f"malformed request: {exc}") from exc
    if not isinstance(event, h11.Request):
        raise BadHandshake(400, "incomplete request")
    headers = [(name.lower(), value) for name, value in event.headers]
    return event.method.decode("ascii"), event.target, headers


def build_scope(
    head: bytes,
    peer: tuple[str, int],
    server: tuple[str, int],
    proxies: TrustedProxies,
) -> dict[str, Any]:
    """The ASGI-like scope of a WebSocket handshake (without session and user yet)."""
    method, target, headers = parse_head(head)
    if method != "GET":
        raise BadHandshake(405, "a WebSocket handshake is a GET")
    raw_path, _, query = target.partition(b"?")
    first = {name: value for name, value in reversed(headers)}
    upgrade = first.get(b"upgrade", b"").lower() == b"websocket"
    if not upgrade or not first.get(b"sec-websocket-key"):
        raise BadHandshake(400, "not a WebSocket handshake (Upgrade: websocket, a key)")
    if first.get(b"sec-websocket-version") != b"13":
        raise BadHandshake(400, "unsupported WebSocket version (13 is)")
    scheme = "ws"
    if peer[0] in proxies and first.get(b"x-forwarded-proto", b"").lower() in (b"https", b"wss"):
        scheme = "wss"
    cookie = first.get(b"cookie", b"").decode("latin-1")
    protocols = first.get(b"sec-websocket-protocol", b"").decode("latin-1")
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "scheme": scheme,
        "path": unquote(raw_path.decode("latin-1")),
        "raw_path": raw_path,
        "root_path": "",
        "query_string": query,
        "headers": headers,
        "client": (proxies.client(peer[0], first.get(b"x-forwarded-for")), peer[1]),
        "server": server,
        "subprotocols": [p.strip() for p in protocols.split(",") if p.strip()],
        "cookies": parse_cookie(cookie) if cookie else {},
    }


def load_identity(session_key: str | None) -> tuple[Any, Any]:
    """The session store and user of a handshake's session cookie, as Channels'
    ``AuthMiddlewareStack`` gives them (sync: ORM): an empty session and AnonymousUser when
    the key is missing, unknown or expired; the session's auth hash is checked."""
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    return store, get_user(SimpleNamespace(session=store))


def session_key(scope: dict[str, Any]) -> str | None:
    """The session key the handshake's cookie names, if any."""
    return scope["cookies"].get(settings.SESSION_COOKIE_NAME) or None


def response(status: int, message: str) -> bytes:
    """An HTTP response refusing a handshake (the connection is then closed)."""
    body = f"{message}\n".encode()
    reasons = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed"}
    reasons.update({408: "Request Timeout", 431: "Request Header Fields Too Large"})
    return (
        f"HTTP/1.1 {status} {reasons.get(status, 'Error')}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body
