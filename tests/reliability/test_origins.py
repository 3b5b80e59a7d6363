"""Origin: a strict scheme://host:port allowlist, checked by real daphne handshakes."""

from __future__ import annotations

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

pytestmark = pytest.mark.e2e

ALLOWED = ["http://app.example.com:8080", "https://app.example.com"]


async def handshake(url: str, origin: str | None) -> int:
    """101 if the WebSocket opened, else the HTTP status the server answered with."""
    try:
        async with connect(url, origin=origin, open_timeout=10):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


async def test_strict_allowlist(live):
    """Only the listed scheme://host:port pairs open; lookalikes, ports, null, none: 403."""
    server = live(ALLOWED_ORIGINS=ALLOWED, ALLOW_MISSING_ORIGIN=False)
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


async def test_missing_origin_allowed_by_default_and_stock_policy_ignores_ports(live):
    """Defaults: no Origin is let in (not a browser); ALLOWED_HOSTS ignores scheme and port.

    This is the gap the strict allowlist closes: any port of an allowed host passes.
    """
    server = live()
    assert await handshake(server.ws, None) == 101
    assert await handshake(server.ws, "http://localhost:1") == 101
    assert await handshake(server.ws, "gopher://localhost:70") == 101
    assert await handshake(server.ws, "http://evil.test") == 403
    assert await handshake(server.ws, "null") == 403
