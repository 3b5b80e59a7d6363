"""wscommands/compat.py: every private internal of daphne, Twisted, Channels, asyncio and
channels_redis wscommands relies on is there in the pinned versions, and one that goes missing
is reported once at start-up, naming what switches off."""

from __future__ import annotations

import asyncio.unix_events
import logging

import channels_redis.utils

from wscommands._internal import compat


def test_every_internal_is_found_with_the_pinned_versions():
    """requirements.txt pins the versions compat.py was verified with: all present."""
    assert compat.missing_internals() == []
    assert set(compat.USES) == {
        "daphne.handle_reply",
        "uvicorn.protocol_transport",
        "daphne.application_queue",
        "asyncio.queue_items",
        "autobahn.fail_by_drop",
        "twisted.write_buffer",
        "channels.session_send",
        "asyncio.sighandler_noop",
        "channels_redis.create_pool",
    }


def test_a_missing_internal_is_warned_about_once_naming_what_switches_off(monkeypatch, caplog):
    """An upgrade that drops one (simulated by removing it) logs one warning, not one per call."""
    monkeypatch.delattr(asyncio.unix_events, "_sighandler_noop")
    monkeypatch.delattr(channels_redis.utils, "create_pool")
    monkeypatch.setattr(compat, "_warned", set())
    assert compat.missing_internals() == ["asyncio.sighandler_noop", "channels_redis.create_pool"]
    with caplog.at_level(logging.WARNING, logger="wscommands"):
        compat.warn_missing_once()
        compat.warn_missing_once()
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2
    assert "asyncio.sighandler_noop" in warnings[0]
    assert compat.USES["asyncio.sighandler_noop"] in warnings[0]
    assert compat.USES["channels_redis.create_pool"] in warnings[1]


def test_server_socket_is_none_under_other_servers():
    """Under the test communicator (or any server but daphne and uvicorn), flow control
    switches off without a warning."""

    async def send(message):
        pass

    assert compat.server_socket(send, 1024) is None
