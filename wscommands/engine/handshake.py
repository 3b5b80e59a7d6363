"""The engine's handshake: the HTTP upgrade request as an ASGI-like scope, and its identity;
and the one plain HTTP request it serves besides, ``GET /metrics``.

The scope has the keys the ASGI path's has (``type``, ``path``, ``query_string``,
``headers``, ``client``, ``server``, ``scheme``, ``cookies``, ``session``, ``user``), so the
same origin check (:func:`~wscommands.guards.origins.origin_allowed`), caps and commands
apply unchanged. The client address is the TCP peer's, or, when that peer is a trusted proxy
(``--forwarded-allow-ips``, as uvicorn's option of the same name), the last address in
``X-Forwarded-For`` that is not a trusted proxy itself.

``GET /metrics`` (no upgrade) gets what Django's view answers, from the same function
(:func:`~wscommands.observability.prometheus.scrape`); every other request takes the
handshake's way and gets its answers.
"""

from __future__ import annotations

import ipaddress
from importlib import import_module
from types import SimpleNamespace
from typing import Any, NamedTuple
from urllib.parse import unquote

from django.conf import settings
from django.contrib.auth import get_user
from django.http import HttpResponse
from django.http.cookie import parse_cookie
from django.utils.functional import SimpleLazyObject

from ..observability import prometheus

try:
    import h11
except ImportError:  # the "engine" extra; the engine says what to install
    h11 = None  # type: ignore[assignment]

#: Largest request head (request line and headers) read, in bytes, as picows allows.
MAX_HEAD = 16 * 1024
#: The path of the metrics, as ``wscommands.urls`` mounted at the root.
METRICS_PATH = "/metrics"

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


class Head(NamedTuple):
    """A request head: its method, target (split at ``?``) and headers (names in lower case)."""

    method: str
    raw_path: bytes
    query: bytes
    headers: list[tuple[bytes, bytes]]
    #: Each header's first value.
    first: dict[bytes, bytes]

    @property
    def path(self) -> str:
        """The path, percent-decoded (as an ASGI scope's)."""
        return unquote(self.raw_path.decode("latin-1"))

    @property
    def upgrade(self) -> bool:
        """Whether it asks for a WebSocket (``Upgrade: websocket``)."""
        return self.first.get(b"upgrade", b"").lower() == b"websocket"

    def joined(self, name: bytes) -> str:
        """Every value of header ``name`` joined with commas, as Django's ``request.headers``."""
        return ",".join(value.decode("latin-1") for key, value in self.headers if key == name)


def parse_head(head: bytes) -> Head:
    """The request head ``head`` (h11 parses it); BadHandshake (400) for anything that is not
    one HTTP/1.1 request."""
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
    raw_path, _, query = event.target.partition(b"?")
    first = {name: value for name, value in reversed(headers)}
    return Head(event.method.decode("ascii"), raw_path, query, headers, first)


def client_address(head: Head, peer: str, proxies: TrustedProxies) -> str:
    """The client's address: the peer's, or behind trusted proxies the forwarded one."""
    return proxies.client(peer, head.first.get(b"x-forwarded-for"))


def build_scope(
    head: Head,
    peer: tuple[str, int],
    server: tuple[str, int],
    proxies: TrustedProxies,
) -> dict[str, Any]:
    """The ASGI-like scope of a WebSocket handshake (without session and user yet)."""
    if head.method != "GET":
        raise BadHandshake(405, "a WebSocket handshake is a GET")
    first = head.first
    if not head.upgrade or not first.get(b"sec-websocket-key"):
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
        "path": head.path,
        "raw_path": head.raw_path,
        "root_path": "",
        "query_string": head.query,
        "headers": head.headers,
        "client": (client_address(head, peer[0], proxies), peer[1]),
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


def session_key(cookies: dict[str, str]) -> str | None:
    """The session key the request's cookies name, if any."""
    return cookies.get(settings.SESSION_COOKIE_NAME) or None


def asks_for_metrics(head: Head) -> bool:
    """Whether ``head`` is ``GET /metrics`` without an upgrade (the query string aside)."""
    return head.method == "GET" and not head.upgrade and head.path == METRICS_PATH


def has_metrics_token(head: Head) -> bool:
    """Whether the request carries the ``METRICS_TOKEN`` bearer token (Prometheus)."""
    return prometheus.bearer_ok(head.joined(b"authorization"))


def cookie_session_key(head: Head) -> str | None:
    """The session key a request's cookies name, if any (see :func:`session_key`)."""
    return session_key(parse_cookie(head.joined(b"cookie")))


def scrape(head: Head, key: str | None) -> HttpResponse:
    """The answer to ``GET /metrics``, Django's view's (sync: the user of session key ``key``,
    :func:`cookie_session_key`, is loaded only when the bearer token does not already let the
    request in)."""
    user = SimpleLazyObject(lambda: load_identity(key)[1])
    return prometheus.scrape(head.joined(b"authorization"), user)


def encode(answer: HttpResponse) -> bytes:
    """``answer`` as HTTP/1.1 bytes, the last on its connection (``Connection: close``)."""
    body = answer.content
    return (
        f"HTTP/1.1 {answer.status_code} {answer.reason_phrase}\r\n".encode()
        + answer.serialize_headers()
        + f"\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )


def response(status: int, message: str) -> bytes:
    """An HTTP response refusing a handshake (the connection is then closed)."""
    return encode(
        HttpResponse(f"{message}\n", status=status, content_type="text/plain; charset=utf-8")
    )
