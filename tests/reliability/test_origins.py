"""Origin: a strict scheme://host:port allowlist, checked by real handshakes of each server
(daphne, uvicorn, the engine)."""

from __future__ import annotations

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.live import SERVERS

pytestmark = pytest.mark.e2e
over_every_server = pytest.mark.parametrize("kind", SERVERS, indirect=True)

ALLOWED = ["http://app.example.com:8080", "https://app.example.com"]


async def handshake(url: str, origin: str | None) -> int:
    """101 if the WebSocket opened, else the HTTP status the server answered with."""
    try:
        async with connect(url, origin=origin, open_timeout=10):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


@over_every_server
async def test_strict_allowlist(live, kind):
    """Only the listed scheme://host:port pairs open; lookalikes, ports, null, none: 403."""
    server = live(kind=kind, ALLOWED_ORIGINS=ALLOWED, ALLOW_MISSING_ORIGIN=False)
    for origin in (
        "http://app.example.com:8080",
        "https://app.example.com",
        "https://app.example.com:443",  # the default port, spelled out
        "HTTPS://APP.EXAMPLE.COM",
    ):
        assert await handshake(server.ws, origin) == 101, origin
    for origin in (
        "http://app.example.com",  # wrong port (80)
        "https://app.example.com:8443",  # wrong port
        "https://app.example.com:8080",  # wrong scheme for that port
        "http://app.example.com.evil.test:8080",  # lookalike suffix
        "http://evilapp.example.com:8080",  # lookalike prefix
        "http://sub.app.example.com:8080",  # subdomain
        "http://app.example.com:8080@evil.test",  # userinfo trick
        "null",  # sandboxed iframes, file:// pages
        None,  # no Origin at all
    ):
        assert await handshake(server.ws, origin) == 403, origin


async def handshake_as(port: int, origin: str | None, host: str) -> int:
    """:func:`handshake` to ``ws://host:port/ws/`` (the ``Host`` a browser there sends),
    connecting to 127.0.0.1 whatever ``host`` resolves to."""
    try:
        url = f"ws://{host}:{port}/ws/"
        async with connect(url, origin=origin, host="127.0.0.1", port=port, open_timeout=10):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


@over_every_server
async def test_default_policy_is_same_origin(live, kind):
    """Default: only a page of the socket's own scheme, host and port gets in (HTTP 403 for
    the rest), as OWASP recommends; no Origin at all (a program, not a browser) is let in.

    Before, any scheme and port of an allowed host passed: a page on ``http://127.0.0.1:1``
    or ``gopher://localhost:70`` opened a socket as the cookie's user.
    """
    server = live(kind=kind)
    port = server.port
    assert await handshake(server.ws, f"http://127.0.0.1:{port}") == 101
    assert await handshake(server.ws, f"HTTP://127.0.0.1:{port}/") == 101
    assert await handshake(server.ws, None) == 101
    for origin in (
        "http://127.0.0.1:1",  # another port of the same host
        "http://127.0.0.1",  # port 80
        f"https://127.0.0.1:{port}",  # another scheme (the socket is ws://, not wss://)
        "https://127.0.0.1",
        "gopher://localhost:70",
        f"http://localhost:{port}",  # another allowed host: another origin
        "http://evil.test",
        "null",
    ):
        assert await handshake(server.ws, origin) == 403, origin
    # The host must be allowed: a name rebound to this server (DNS rebinding) is its own
    # origin, but not one of ALLOWED_HOSTS.
    assert await handshake_as(port, f"http://evil.test:{port}", "evil.test") == 403
    assert await handshake_as(port, f"http://localhost:{port}", "localhost") == 101


@over_every_server
async def test_same_origin_behind_a_tls_proxy(live, kind):
    """Behind a proxy that terminates TLS (X-Forwarded-Proto, named by Django's
    SECURE_PROXY_SSL_HEADER), the page's origin is https: http pages are refused."""
    server = live(env={"DJANGO_HTTPS": "1"}, kind=kind)
    port = server.port
    forwarded = {"X-Forwarded-Proto": "https"}
    for origin, expected in ((f"https://127.0.0.1:{port}", 101), (f"http://127.0.0.1:{port}", 403)):
        try:
            async with connect(
                server.ws, origin=origin, additional_headers=forwarded, open_timeout=10
            ):
                status = 101
        except InvalidStatus as exc:
            status = exc.response.status_code
        assert status == expected, origin
    assert await handshake(server.ws, f"https://127.0.0.1:{port}") == 403  # no header: http


@over_every_server
async def test_allowed_hosts_policy_only_when_asked(live, kind):
    """ORIGIN_POLICY "allowed-hosts": Channels' lax check, any scheme and port of a host of
    ALLOWED_HOSTS, for deployments that ask for it."""
    server = live(kind=kind, ORIGIN_POLICY="allowed-hosts")
    assert await handshake(server.ws, None) == 101
    assert await handshake(server.ws, "http://localhost:1") == 101
    assert await handshake(server.ws, "gopher://localhost:70") == 101
    assert await handshake(server.ws, "http://evil.test") == 403
    assert await handshake(server.ws, "null") == 403


def test_unknown_origin_policy_is_caught_at_start_up(settings):
    """A misspelt ORIGIN_POLICY is a start-up error saying which values exist."""
    from wscommands.checks import check_limits

    settings.WSCOMMANDS = {**settings.WSCOMMANDS, "ORIGIN_POLICY": "same_origin"}
    errors = [e for e in check_limits() if e.id == "wscommands.E020"]
    assert len(errors) == 1
    assert "same-origin, allowed-hosts" in errors[0].msg
