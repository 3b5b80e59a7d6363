"""Sessions that end stop being served: at once on a logout or deletion, else periodically.

A logout anywhere (Django's ``user_logged_out`` signal, in any process of the deployment,
HTTP-only ones included) or the deletion of a session row (``post_delete`` of
``sessions.Session``, the database session backends) is sent to every process through the
channel layer (:mod:`..delivery.sessionend`): that session's sockets close with 4401
``session_ended`` within about a second. Ends that send no signal (expiry, a password change,
a cache-only session cleared) are caught within ``WSCOMMANDS["SESSION_CHECK_INTERVAL"]``
seconds: one task per process re-loads the sessions of its logged-in connections and closes
those that no longer hold their user with 4401 too.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from django.apps import apps
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_delete
from django.utils import timezone

from .._internal.runtime import RUNTIME, Part
from .._internal.threads import run_sync
from ..conf import wscommands_settings
from ..delivery.sessionend import end_session
from ..hub.process import get_hub
from ..observability import logs
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
    """Close (4401) this process's connections whose session has ended; returns how many."""
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
            logger.info("connection %s: session ended, closing with 4401", connection.id)
            await connection.close(CloseCode.SESSION_ENDED)
            closed += 1
    return closed


async def _announce_end(session_key: str | None) -> None:
    if not session_key:
        return
    try:
        await end_session(session_key)
    except Exception as exc:  # the periodic check closes them later
        logger.warning("could not announce an ended session (%s)", type(exc).__name__)


async def on_logged_out(sender: Any, request: Any = None, **kwargs: Any) -> None:
    """``user_logged_out``: the request's session ends (before Django flushes it)."""
    await _announce_end(getattr(getattr(request, "session", None), "session_key", None))


async def on_session_deleted(sender: Any, instance: Any = None, **kwargs: Any) -> None:
    """``post_delete`` of a ``sessions.Session`` row that had not expired (``clearsessions``
    deletes expired ones in bulk: the periodic check has closed their sockets already)."""
    expires = getattr(instance, "expire_date", None)
    if expires is None or expires > timezone.now():
        await _announce_end(getattr(instance, "session_key", None))


def connect_signals() -> None:
    """Listen for logouts and deleted sessions (called once, at app start-up)."""
    user_logged_out.connect(on_logged_out, dispatch_uid="wscommands-session-ended")
    if apps.is_installed("django.contrib.sessions"):
        post_delete.connect(
            on_session_deleted, sender="sessions.Session", dispatch_uid="wscommands-session-deleted"
        )
