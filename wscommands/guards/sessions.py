"""Session re-validation: a user logged out elsewhere stops being served.

A user logged out elsewhere, or whose session expired (or whose password changed), stops
being served within ``WSCOMMANDS["SESSION_CHECK_INTERVAL"]`` seconds: one task per process
re-loads the sessions of its logged-in connections and closes those that no longer hold
their user with 3000.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .._internal.runtime import RUNTIME, Part
from .._internal.threads import run_sync
from ..conf import wscommands_settings
from ..observability import logs
from ..runtime.hub import get_hub
from ..wire.codes import CloseCode
from .authentication import load_session

logger = logging.getLogger("wscommands.connection")


class SessionWatcher:
    """One event loop's task that re-validates the sessions of its connections."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        """Start watching if it is configured and not running (at each handshake)."""
        if wscommands_settings.SESSION_CHECK_INTERVAL and (self.task is None or self.task.done()):
            self.task = logs.process_task(self._watch(), "wscommands-sessions")

    async def _watch(self) -> None:
        while get_hub().connections:
            await asyncio.sleep(wscommands_settings.SESSION_CHECK_INTERVAL)
            try:
                await check_sessions()
            except Exception:  # the database may be down: try again next time
                logger.warning("could not re-validate sessions", exc_info=True)


SESSION_WATCHER: Part[SessionWatcher] = Part(
    "session watcher", lambda: SessionWatcher(asyncio.get_running_loop())
)


def get_session_watcher() -> SessionWatcher:
    """The running loop's :class:`SessionWatcher`."""
    return RUNTIME.get(SESSION_WATCHER)


def ended_sessions(pairs: list[tuple[str, Any]]) -> set[tuple[str, Any]]:
    """The (session key, user pk) pairs whose session no longer holds that user (sync: ORM)."""
    ended = set()
    for key, pk in pairs:
        store, user = load_session(key)
        if store is None or user is None or not user.is_authenticated or user.pk != pk:
            ended.add((key, pk))
    return ended


async def check_sessions() -> int:
    """Close (3000) this process's connections whose session has ended; returns how many."""
    owners: dict[tuple[str, Any], list[Any]] = {}
    for connection in list(get_hub().connections.values()):
        session = getattr(connection, "session", None)
        key = getattr(session, "session_key", None)
        if key and connection.user_pk is not None:
            owners.setdefault((key, connection.user_pk), []).append(connection)
    if not owners:
        return 0
    closed = 0
    for pair in await run_sync(ended_sessions, list(owners)):
        for connection in owners[pair]:
            # Never log the session key: it is a password.
            logger.info("connection %s: session ended, closing with 3000", connection.id)
            await connection.close(CloseCode.AUTHENTICATION_FAILED)
            closed += 1
    return closed
