"""Graceful shutdown on SIGTERM: close every local connection with 4503, then exit.

daphne's own SIGTERM handling (Twisted's) stops the reactor and cancels every application:
clients see the TCP connection drop without a close frame, on_disconnect hooks never run and
group memberships stay in Redis until they expire. wscommands wraps the server's SIGTERM
handler: it closes every local connection with 4503, lets their disconnect handling run
(hooks, groups, presence), waits at most ``WSCOMMANDS["SHUTDOWN_TIMEOUT"]`` seconds, then
hands over to the server's handler. New handshakes during that time are refused with 4503.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable
from typing import Any

from .._internal.compat import is_asyncio_placeholder
from .._internal.runtime import RUNTIME, Part
from ..conf import wscommands_settings
from ..observability import logs
from ..runtime.hub import get_hub
from ..wire.codes import CloseCode
from ..wire.protocol import ADMIT, Decision, refuse

logger = logging.getLogger("wscommands.connection")


class Shutdown:
    """One event loop's (one server process's) shutdown state and SIGTERM handler."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.shutting_down = False
        self._install_sigterm()

    def admit(self) -> Decision:
        """Refuse new handshakes (close 4503) once shutdown has begun."""
        return refuse(close=CloseCode.SHUTTING_DOWN) if self.shutting_down else ADMIT

    def _install_sigterm(self) -> None:
        previous = signal.getsignal(signal.SIGTERM)
        # Only wrap a server's own Python handler (daphne's Twisted reactor, uvicorn);
        # SIG_DFL means nobody asked for a graceful stop (e.g. a test process).
        if not callable(previous) or is_asyncio_placeholder(previous):
            return
        try:
            self.loop.add_signal_handler(signal.SIGTERM, self._on_sigterm, previous)
        except (RuntimeError, ValueError):  # not the main thread, or a loop without signals
            logger.info("cannot handle SIGTERM on this loop: no graceful shutdown")

    def _on_sigterm(self, previous: Callable[..., Any]) -> None:
        if self.shutting_down:  # a second SIGTERM: stop now
            previous(signal.SIGTERM, None)
            return
        self.shutting_down = True
        logs.process_task(self.run(previous), "wscommands-shutdown")

    async def run(self, then: Callable[..., Any] | None = None) -> None:
        """Close every local connection with 4503, wait for them to finish, call ``then``."""
        self.shutting_down = True
        started = time.monotonic()
        hub = get_hub()
        connections = list(hub.connections.values())
        logger.info("shutting down: closing %d connection(s) with 4503", len(connections))
        for connection in connections:
            try:
                await connection.close(CloseCode.SHUTTING_DOWN)
            except Exception:
                logger.warning("could not close %s", connection.id, exc_info=True)
        deadline = started + wscommands_settings.SHUTDOWN_TIMEOUT
        # Done when the last disconnect has also stopped the hub (left its groups).
        while (hub.connections or hub.channel is not None) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        logger.info(
            "shutdown: %d connection(s) closed in %.2fs, %d left",
            len(connections) - len(hub.connections),
            time.monotonic() - started,
            len(hub.connections),
        )
        if then is not None:
            then(signal.SIGTERM, None)


SHUTDOWN: Part[Shutdown] = Part("shutdown", lambda: Shutdown(asyncio.get_running_loop()))


def get_shutdown() -> Shutdown:
    """The running loop's :class:`Shutdown` (created, and SIGTERM wrapped, on first use)."""
    return RUNTIME.get(SHUTDOWN)
