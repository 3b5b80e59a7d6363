"""Process-level life cycle of connections: session re-validation and graceful shutdown.

- Sessions: a user logged out elsewhere, or whose session expired (or whose password
  changed), stops being served within ``WSCOMMANDS["SESSION_CHECK_INTERVAL"]`` seconds:
  one task per process re-loads the sessions of its logged-in connections and closes those
  that no longer hold their user with 3000.
- Shutdown: daphne's own SIGTERM handling (Twisted's) stops the reactor and cancels every
  application: clients see the TCP connection drop without a close frame, on_disconnect
  hooks never run and group memberships stay in Redis until they expire. wscommands wraps
  the server's SIGTERM handler: it closes every local connection with 4503, lets their
  disconnect handling run (hooks, groups, presence), waits at most
  ``WSCOMMANDS["SHUTDOWN_TIMEOUT"]`` seconds, then hands over to the server's handler.
  New handshakes during that time are closed with 4503 at once.

The consumer calls :func:`admit_connection` when a connection arrives.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import logs
from .auth import load_session
from .conf import wscommands_settings
from .hub import get_hub
from .threads import run_sync

if TYPE_CHECKING:
    from .connection import Connection
    from .consumer import CommandConsumer

logger = logging.getLogger("wscommands.connection")

#: Close codes (PROTOCOL.md).
SESSION_ENDED = 3000
SHUTTING_DOWN = 4503


class Lifecycle:
    """One event loop's (one server process's) session watcher and shutdown state."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.shutting_down = False
        self.watcher: asyncio.Task | None = None
        self._install_sigterm()

    # Sessions -----------------------------------------------------------------------------

    def watch_sessions(self) -> None:
        """Start the session watcher if it is configured and not running."""
        if wscommands_settings.SESSION_CHECK_INTERVAL and (
            self.watcher is None or self.watcher.done()
        ):
            self.watcher = logs.process_task(self._watch(), "wscommands-sessions")

    async def _watch(self) -> None:
        while get_hub().connections:
            await asyncio.sleep(wscommands_settings.SESSION_CHECK_INTERVAL)
            try:
                await check_sessions()
            except Exception:  # the database may be down: try again next time
                logger.warning("could not re-validate sessions", exc_info=True)

    # Shutdown -----------------------------------------------------------------------------

    def _install_sigterm(self) -> None:
        previous = signal.getsignal(signal.SIGTERM)
        # Only wrap a server's own Python handler (daphne's Twisted reactor, uvicorn);
        # SIG_DFL means nobody asked for a graceful stop (e.g. a test process).
        if not callable(previous) or getattr(previous, "__name__", "") == "_sighandler_noop":
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
        logs.process_task(self.shutdown(previous), "wscommands-shutdown")

    async def shutdown(self, then: Callable[..., Any] | None = None) -> None:
        """Close every local connection with 4503, wait for them to finish, call ``then``."""
        self.shutting_down = True
        started = time.monotonic()
        hub = get_hub()
        connections = list(hub.connections.values())
        logger.info("shutting down: closing %d connection(s) with 4503", len(connections))
        for connection in connections:
            try:
                await connection.consumer.close(SHUTTING_DOWN)
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


_lifecycles: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Lifecycle] = (
    weakref.WeakKeyDictionary()
)


def get_lifecycle() -> Lifecycle:
    """The running loop's :class:`Lifecycle` (created, and SIGTERM wrapped, on first use)."""
    loop = asyncio.get_running_loop()
    life = _lifecycles.get(loop)
    if life is None:
        life = _lifecycles[loop] = Lifecycle(loop)
    return life


async def admit_connection(consumer: CommandConsumer) -> bool:
    """Refuse a handshake during shutdown (close 4503); start the session watcher."""
    life = get_lifecycle()
    if life.shutting_down:
        await consumer.accept()
        await consumer.close(SHUTTING_DOWN)
        return False
    life.watch_sessions()
    return True


def _stale(pairs: list[tuple[str, Any]]) -> set[tuple[str, Any]]:
    """The (session key, user pk) pairs whose session no longer holds that user."""
    stale = set()
    for key, pk in pairs:
        store, user = load_session(key)
        if store is None or user is None or not user.is_authenticated or user.pk != pk:
            stale.add((key, pk))
    return stale


async def check_sessions() -> int:
    """Close (3000) this process's connections whose session has ended; returns how many."""
    owners: dict[tuple[str, Any], list[Connection]] = {}
    for connection in list(get_hub().connections.values()):
        key = getattr(connection.session, "session_key", None)
        if key and connection.is_authenticated():
            owners.setdefault((key, connection.user.pk), []).append(connection)
    if not owners:
        return 0
    closed = 0
    for pair in await run_sync(_stale, list(owners)):
        for connection in owners[pair]:
            # Never log the session key: it is a password.
            logger.info("connection %s: session ended, closing with 3000", connection.id)
            await connection.consumer.close(SESSION_ENDED)
            closed += 1
    return closed
