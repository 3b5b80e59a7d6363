"""picows's server-side WebSocket protocol, built by hand for the engine's handshake gate.

Part of the compat fence (see the package): picows makes its ``WSProtocol`` only inside
``ws_create_server``, whose listener factory is synchronous and answers the handshake at
once. The engine must load the session and register the connection with the hub before the
101 goes out (docs/protocol.md: pushes flow from the moment the handshake completes), so it
reads the request head itself and only then hands the socket to a ``WSProtocol`` it builds
with the same arguments ``ws_create_server`` passes (by keyword: a renamed one fails loudly).
Not imported by the package: only the engine needs picows.

Verified with picows 2.3.1.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

try:
    from picows import WSAutoPingStrategy
    from picows import picows as picows_impl
except ImportError:  # the "engine" extra; the engine says what to install
    picows_impl = None  # type: ignore[assignment]


def server_protocol(
    listener_factory: Callable[[Any], Any],
    *,
    logger: logging.Logger | logging.LoggerAdapter,
    max_frame_size: int,
    ping_interval: float,
    handshake_timeout: float,
) -> asyncio.BufferedProtocol:
    """A picows server protocol whose handshake calls ``listener_factory(request)``;
    ``ping_interval`` seconds of silence get a ping, unanswered as long again closes it
    (0: never)."""
    assert picows_impl is not None  # the engine checks picows is installed first
    protocol: asyncio.BufferedProtocol = picows_impl.WSProtocol(  # type: ignore[attr-defined]
        host_port=None,
        ws_path=None,
        is_client_side=False,
        ws_listener_factory=listener_factory,
        logger=logger,
        disconnect_on_exception=True,
        websocket_handshake_timeout=handshake_timeout,
        enable_auto_ping=ping_interval > 0,
        auto_ping_idle_timeout=ping_interval or 20.0,
        auto_ping_reply_timeout=ping_interval or 20.0,
        auto_ping_strategy=WSAutoPingStrategy.PING_WHEN_IDLE,
        enable_auto_pong=True,
        max_frame_size=max_frame_size,
        extra_headers=None,
        # Grown as frames need it: an idle connection holds little (16 KiB each by default).
        read_buffer_init_size=4096,
    )
    return protocol


def probe() -> str | None:
    """Why the installed picows cannot serve the engine (None: it can). Needs a running loop."""
    if picows_impl is None:
        return "picows is not installed"
    try:
        protocol = server_protocol(
            lambda request: None,
            logger=logging.getLogger("picows.server"),
            max_frame_size=1024,
            ping_interval=0,
            handshake_timeout=1,
        )
    except (TypeError, AttributeError) as exc:
        return f"picows's WSProtocol takes other arguments ({exc})"
    if not isinstance(protocol, asyncio.BufferedProtocol):
        return "picows's WSProtocol is no longer an asyncio.BufferedProtocol"
    return None
