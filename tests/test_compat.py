"""wscommands/_internal/compat: every private internal of daphne, Twisted, autobahn, uvicorn,
websockets, Channels, asyncio and channels_redis wscommands relies on is there in the pinned
versions; each probe exercises the behaviour (not the source text), so a changed behaviour is
reported once at start-up, naming what switches off; third-party exceptions are recognised
by their class, not by a name any package may reuse."""

from __future__ import annotations

import asyncio
import asyncio.unix_events
import functools
import logging
from types import SimpleNamespace

import autobahn.exception
import autobahn.websocket.protocol
import channels_redis.utils
import daphne.server
import pytest
import uvicorn.protocols.websockets.websockets_sansio_impl as sansio
import websockets.exceptions
from channels.exceptions import ChannelFull

from wscommands._internal import compat
from wscommands._internal.compat import uses
from wscommands._internal.resilience import or_unavailable
from wscommands.wire.exceptions import Unavailable

ALL = {
    "daphne.handle_reply",
    "uvicorn.protocol_transport",
    "daphne.application_queue",
    "asyncio.queue_items",
    "autobahn.fail_by_drop",
    "twisted.write_buffer",
    "channels.session_send",
    "asyncio.sighandler_noop",
    "channels_redis.create_pool",
    "channels_redis.pubsub_connection",
    "autobahn.disconnected",
    "websockets.connection_closed",
}


@pytest.fixture
def warned(monkeypatch):
    """Warnings given so far are forgotten (each test sees its own)."""
    monkeypatch.setattr(uses, "_warned", set())


def test_every_internal_is_found_with_the_pinned_versions():
    """requirements.txt pins the versions compat was verified with: all present (uvicorn's
    default implementation is loaded by this module's imports, so its probe runs too)."""
    assert compat.missing_internals() == []
    assert set(compat.USES) == ALL


def test_a_missing_internal_is_warned_about_once_naming_what_switches_off(
    monkeypatch, caplog, warned
):
    """An upgrade that drops one (simulated by removing it) logs one warning, not one per call."""
    monkeypatch.delattr(asyncio.unix_events, "_sighandler_noop")
    monkeypatch.delattr(channels_redis.utils, "create_pool")
    assert compat.missing_internals() == ["asyncio.sighandler_noop", "channels_redis.create_pool"]
    with caplog.at_level(logging.WARNING, logger="wscommands"):
        compat.warn_missing_once()
        compat.warn_missing_once()
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2
    assert "asyncio.sighandler_noop" in warnings[0]
    assert compat.USES["asyncio.sighandler_noop"] in warnings[0]
    assert compat.USES["channels_redis.create_pool"] in warnings[1]


def test_a_reformatted_daphne_reply_path_is_still_found(monkeypatch):
    """Written differently (no ``partial(self.handle_reply, protocol)`` in the source), the
    same behaviour passes: the probe runs create_application, it does not grep it."""

    def create_application(self, protocol, scope):
        reply = functools.partial(
            self.handle_reply,
            protocol,
        )
        self.application(scope=scope, receive=asyncio.Queue().get, send=reply)

    monkeypatch.setattr(daphne.server.Server, "create_application", create_application)
    assert "daphne.handle_reply" not in compat.missing_internals()


def test_a_daphne_whose_send_hides_the_protocol_is_warned_about(monkeypatch, caplog, warned):
    """A daphne that wraps its reply path differently turns the feature off with the same
    warning as a missing internal."""

    def create_application(self, protocol, scope):
        async def send(message):
            await self.handle_reply(protocol, message)

        self.application(scope=scope, receive=asyncio.Queue().get, send=send)

    monkeypatch.setattr(daphne.server.Server, "create_application", create_application)
    assert compat.missing_internals() == ["daphne.handle_reply"]
    with caplog.at_level(logging.WARNING, logger="wscommands"):
        compat.warn_missing_once()
    assert [r.getMessage() for r in caplog.records] == [
        "wscommands: daphne.handle_reply is not available in the installed daphne; "
        f"switched off: {compat.USES['daphne.handle_reply']}"
    ]


def test_autobahn_still_dropping_without_a_close_frame_is_found(monkeypatch):
    def fail(self, code=1001, reason="going away"):
        self.dropConnection(abort=True)

    monkeypatch.setattr(autobahn.websocket.protocol.WebSocketProtocol, "_fail_connection", fail)
    assert compat.missing_internals() == ["autobahn.fail_by_drop"]


def test_the_selected_uvicorn_implementation_is_probed(monkeypatch):
    """uvicorn's loaded WebSocket implementation must keep its transport as ``transport``."""

    def connection_made(self, transport):
        self.connections.add(self)
        self.sock = transport

    monkeypatch.setattr(sansio.WebSocketsSansIOProtocol, "connection_made", connection_made)
    assert compat.missing_internals() == ["uvicorn.protocol_transport"]


def test_a_uvicorn_protocol_without_its_transport_is_warned_about_at_the_connection(caplog, warned):
    """Whatever ``--ws`` selected, the first connection it serves is checked."""
    owner = type("Protocol", (), {"__module__": "uvicorn.protocols.websockets.other"})()
    bound = SimpleNamespace(__self__=owner)  # what a bound method of it looks like
    with caplog.at_level(logging.WARNING, logger="wscommands"):
        assert compat.server_socket(bound, 1024) is None
    assert "uvicorn.protocol_transport" not in compat.missing_internals()
    assert [r.getMessage() for r in caplog.records] == [
        "wscommands: uvicorn's Protocol keeps no asyncio transport; switched off: "
        f"{compat.USES['uvicorn.protocol_transport']}"
    ]


def test_server_socket_is_none_under_other_servers(caplog):
    """Under the test communicator (or any server but daphne and uvicorn), flow control
    switches off without a warning."""

    async def send(message):
        pass

    with caplog.at_level(logging.WARNING, logger="wscommands"):
        assert compat.server_socket(send, 1024) is None
    assert caplog.records == []


def test_closed_socket_errors_are_known_by_class_not_by_name():
    """autobahn's Disconnected and websockets' ConnectionClosed (and its subclasses) mean the
    client has gone; a class of another package that merely shares the name does not."""
    assert compat.is_closed_error(autobahn.exception.Disconnected())
    assert compat.is_closed_error(websockets.exceptions.ConnectionClosedOK(None, None))
    assert compat.is_closed_error(ConnectionResetError())
    impostor = type("Disconnected", (Exception,), {"__module__": "myapp.errors"})
    assert not compat.is_closed_error(impostor())
    assert not compat.is_closed_error(RuntimeError("a bug"))


async def test_channel_full_passes_through_as_its_class_subclasses_included():
    """A full channel is a slow receiver, not an unreachable layer: never ``unavailable``."""

    class LayerFull(ChannelFull):
        pass

    async def full():
        raise LayerFull

    async def down():
        raise ConnectionError("refused")

    with pytest.raises(LayerFull):
        await or_unavailable(full(), "send")
    with pytest.raises(Unavailable):
        await or_unavailable(down(), "send")
