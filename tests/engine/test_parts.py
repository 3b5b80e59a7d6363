"""The engine's parts that need no server: the handshake's client address and scope, the
picows protocol it builds, the frames it writes, and what the command says when the extra
is missing (tests/reliability/test_engine.py runs the engine itself)."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from tests.require import require
from wscommands._internal.compat import picows_server
from wscommands.engine.handshake import BadHandshake, TrustedProxies, build_scope, parse_head
from wscommands.engine.socket import Frames
from wscommands.management.commands import wscommands_engine

UPGRADE = (
    b"GET /ws/?resume=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\nCookie: sessionid=abc; other=1\r\n"
)


def scope_of(head: bytes, peer: str = "127.0.0.1", trusted: str = "127.0.0.1") -> dict:
    return build_scope(
        parse_head(head + b"\r\n"), (peer, 5000), ("127.0.0.1", 8001), TrustedProxies(trusted)
    )


def test_the_scope_has_what_the_asgi_path_gives():
    scope = scope_of(UPGRADE)
    assert (scope["type"], scope["path"], scope["query_string"]) == (
        "websocket",
        "/ws/",
        b"resume=1",
    )
    assert scope["client"] == ("127.0.0.1", 5000)
    assert (b"host", b"example.com") in scope["headers"]
    assert scope["cookies"] == {"sessionid": "abc", "other": "1"}
    assert scope["scheme"] == "ws"


def test_forwarded_for_is_believed_from_trusted_proxies_only():
    head = UPGRADE + b"X-Forwarded-For: 203.0.113.9, 10.0.0.5\r\nX-Forwarded-Proto: https\r\n"
    # nginx (127.0.0.1) and an inner proxy (10.0.0.0/8) are trusted: the client is the last
    # address neither of them is.
    behind = scope_of(head, trusted="127.0.0.1, 10.0.0.0/8")
    assert behind["client"][0] == "203.0.113.9"
    assert behind["scheme"] == "wss"
    assert scope_of(head)["client"][0] == "10.0.0.5"  # only nginx trusted
    stranger = scope_of(head, peer="198.51.100.7")  # not a proxy: its headers are not believed
    assert (stranger["client"][0], stranger["scheme"]) == ("198.51.100.7", "ws")
    # "*" trusts every hop: the first address (as uvicorn's --forwarded-allow-ips="*")
    assert scope_of(head, peer="198.51.100.7", trusted="*")["client"][0] == "203.0.113.9"
    assert scope_of(head, trusted="")["client"][0] == "127.0.0.1"
    with pytest.raises(ValueError, match="not an address"):
        TrustedProxies("127.0.0.1, nginx")


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GARBAGE\r\n", 400),
        (b"GET /ws/ HTTP/1.1\r\nHost: x\r\n", 400),  # not an upgrade
        (UPGRADE.replace(b"Version: 13", b"Version: 8"), 400),
        (UPGRADE.replace(b"GET", b"PUT"), 405),
    ],
)
def test_what_is_not_a_websocket_handshake_is_refused_with_its_status(head, status):
    with pytest.raises(BadHandshake) as info:
        scope_of(head)
    assert info.value.status == status


def test_a_text_is_framed_once_and_reused_while_it_is_the_same_object():
    frames = Frames()
    short, medium, long = "é" * 10, "m" * 300, "l" * 70_000
    assert frames.of(short) == b"\x81\x14" + short.encode()
    assert frames.of(medium)[:4] == b"\x81\x7e\x01\x2c"
    assert frames.of(long)[:10] == b"\x81\x7f" + (70_000).to_bytes(8, "big")
    built = frames.of(long)
    assert frames.of(long) is built  # the same string: the same bytes, not framed again
    assert frames.of("l" * 70_000) is not built


async def test_the_installed_picows_builds_the_protocol_the_engine_needs():
    require("picows")
    assert picows_server.probe() is None


def test_the_command_says_what_to_install_without_the_extra(monkeypatch):
    monkeypatch.setattr(wscommands_engine, "installed_h11", None)
    with pytest.raises(CommandError, match=r'pip install "wscommands\[engine\]"'):
        call_command("wscommands_engine")


def test_the_loop_is_uvloop_when_installed_unless_asyncio_is_asked_for(monkeypatch):
    assert wscommands_engine.loop_factory("asyncio") is None
    monkeypatch.setattr(wscommands_engine, "uvloop", None)
    assert wscommands_engine.loop_factory("auto") is None  # not installed: asyncio's
    with pytest.raises(CommandError, match="uvloop is not installed"):
        wscommands_engine.loop_factory("uvloop")
    uvloop = pytest.importorskip("uvloop")  # (installed with uvicorn[standard])
    monkeypatch.setattr(wscommands_engine, "uvloop", uvloop)
    assert wscommands_engine.loop_factory("auto") is uvloop.new_event_loop
    assert wscommands_engine.loop_factory("uvloop") is uvloop.new_event_loop
