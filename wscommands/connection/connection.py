"""The connection object: the first argument of every command and hook."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .._internal.fairpool import Share
from .._internal.threads import run_sync
from ..backends import global_state as state
from ..commands.dev_checks import encode_push
from ..delivery import messaging
from ..delivery.peer import Peer
from ..guards.budget import Account
from ..presence import queries as presence
from ..wire.exceptions import PermissionDenied
from . import memberships
from .timers import CallHandle, Timers
from .transport import Transport

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser
    from django.contrib.sessions.backends.base import SessionBase

    from ..streams.cursor import StreamCursor

logger = logging.getLogger("wscommands.connection")

#: The command being run (its name), so state calls know whose state they mean.
current_command: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "wscommands_current_command", default=None
)


class Connection(Peer):
    """One WebSocket connection, as commands see it.

    Keeps the seed's names: per-command state (``get/update_connection_state``), global
    state, ``broadcast``, ``send_to_subset``, ``is_authenticated``, ``update_session``.
    ``consumer`` is the transport it writes through (:class:`~.transport.Transport`: the
    Channels consumer under daphne or uvicorn).
    """

    def __init__(self, consumer: Transport):
        self.consumer = consumer
        self.scope: dict[str, Any] = consumer.scope
        self.id: str = ""
        self.groups: set[str] = set()
        self.user_pk: Any = None
        self._command_states: dict[str, dict[str, Any]] = {}
        self._values: dict[str, Any] = {}
        #: What a resumable connection (``?resume=1``) was sent per stream; None otherwise.
        self.streams: StreamCursor | None = None
        # The consumer's loop, for call_later from sync commands running in worker threads.
        self._loop = asyncio.get_running_loop()
        #: What this connection holds (requests, timers, groups, backlog): see budget.py.
        self.resources = Account(consumer.cut_off)
        #: Its ``call_later`` calls, charged to ``resources``.
        self.timers = Timers(self._loop, self.resources)
        #: This connection's claim on the worker threads (threads.py).
        client = self.scope.get("client")
        self.worker_share = Share(
            self.user_pk_now,
            address=client[0] if client else None,
        )

    def __repr__(self) -> str:
        return f"<Connection {self.id} user={self.user!s}>"

    # Identity -----------------------------------------------------------------------------

    @property
    def user(self) -> AbstractBaseUser | AnonymousUser | None:
        """The Django user (AnonymousUser when not logged in, None without auth middleware)."""
        return self.scope.get("user")

    @property
    def session(self) -> SessionBase | None:
        """The Django session (None without session middleware)."""
        return self.scope.get("session")

    def is_authenticated(self) -> bool:
        """True when the connection acts as a logged-in user."""
        user = self.user
        return bool(user is not None and user.is_authenticated)

    async def update_session(self, key: str, value: Any) -> None:
        """Set ``key`` in the session and save it to Django's session store."""
        session = self._require_session()
        session[key] = value
        await run_sync(session.save)

    async def remove_from_session(self, key: str) -> None:
        """Delete ``key`` from the session (if present) and save it."""
        session = self._require_session()
        session.pop(key, None)
        await run_sync(session.save)

    async def switch_session(self, session: Any, user: Any) -> None:
        """Act as ``user`` of ``session`` from now on (what ``authenticate`` does)."""
        self.scope["session"] = session
        self.scope["user"] = user
        await self.sync_user()

    def user_pk_now(self) -> Any:
        """The primary key of the connection's user now (None: anonymous)."""
        user = self.user
        return user.pk if user is not None and user.is_authenticated else None

    async def sync_user(self) -> None:
        """File the connection under its current user for messages sent to that user."""
        pk = self.user_pk_now()
        old, self.user_pk = self.user_pk, pk
        await memberships.change_user(self, old, pk)

    def _require_session(self) -> Any:
        if self.session is None:
            raise RuntimeError(
                "No session on this connection: wrap the consumer in Channels' "
                "SessionMiddlewareStack or AuthMiddlewareStack."
            )
        return self.session

    # State --------------------------------------------------------------------------------

    def _state_owner(self) -> str:
        name = current_command.get()
        if name is None:
            raise RuntimeError(
                "get/update_connection_state is for commands (and their call_later "
                "callbacks); elsewhere use get_state/set_state"
            )
        return name

    def get_connection_state(self) -> dict[str, Any]:
        """This command's state on this connection (the live dict; kept between calls)."""
        return self._command_states.setdefault(self._state_owner(), {})

    def update_connection_state(self, mapping: Mapping[str, Any]) -> None:
        """Merge ``mapping`` into this command's state, like ``dict.update``."""
        self.get_connection_state().update(mapping)

    def get_state(self, key: str, default: Any = None) -> Any:
        """A connection-local value shared by all commands and hooks."""
        return self._values.get(key, default)

    def set_state(self, key: str, value: Any) -> None:
        """Set a connection-local value shared by all commands and hooks."""
        self._values[key] = value

    # Messaging ----------------------------------------------------------------------------

    async def send(self, message: dict[str, Any]) -> None:
        """Send a JSON message to this connection only."""
        await self.consumer.push_text(encode_push(message, self.consumer.registry))

    def push_text(self, text: str) -> Awaitable[None]:
        """Write JSON text as it is (dropped once the connection has closed); await it."""
        return self.consumer.push_text(text)

    async def close(self, code: int = 1000) -> None:
        """Close this connection with a close code from the protocol's table."""
        await self.consumer.close(code)

    async def broadcast(self, message: dict[str, Any], everyone_else: bool = False) -> None:
        """Send to every connection of every process (``everyone_else``: but this one)."""
        await messaging.broadcast(message, exclude=self.id if everyone_else else None)

    async def send_to_subset(self, recipients: Iterable[Any], message: dict[str, Any]) -> None:
        """Send to connection ids, connections and users (all of a user's connections)."""
        await messaging.send_to_subset(recipients, message)

    async def join(self, group: str) -> None:
        """Join ``group`` (letters, digits, '.', '_', '-'); raises ValueError if invalid.

        Raises PermissionDenied when a join authorization hook (``@authorize_join``) refuses;
        past ``MAX_GROUPS_PER_CONNECTION`` groups raises RateLimited (``rate_limited``).
        """
        messaging.group_channel_name(group)
        if group not in self.groups:
            refusal = self.resources.admit_group(len(self.groups))
            if refusal is not None:
                raise refusal
            if not await memberships.may_join(self, group):
                raise PermissionDenied(f"may not join {group!r}")
            await memberships.enter_group(self, group)

    async def leave(self, group: str) -> None:
        """Leave ``group``; leaving a group one is not in does nothing."""
        if group in self.groups:
            await memberships.leave_group(self, group)

    async def send_to_group(
        self, group: str, message: dict[str, Any], everyone_else: bool = False
    ) -> None:
        """Send to every member of ``group`` (``everyone_else``: but this connection)."""
        await messaging.send_to_group(group, message, exclude=self.id if everyone_else else None)

    # Global state -------------------------------------------------------------------------

    async def get_global_state(self, key: str | None = None) -> Any:
        """The global value under ``key``, or with no key the whole state as a dict."""
        return await state.get_global_state(key)

    async def update_global_state(self, mapping: Mapping[str, Any]) -> None:
        """Merge ``mapping`` into the global state atomically (all keys or none)."""
        await state.update_global_state(mapping)

    async def increment_global_state(self, key: str, amount: int | float = 1) -> int | float:
        """Atomically add ``amount`` to a global number; returns the new value."""
        return await state.increment_global_state(key, amount)

    # Presence -----------------------------------------------------------------------------

    async def get_presence(
        self, group: str | None = None, *, limit: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]:
        """A page of the live connections of every process (or ``group``'s): see docs."""
        return await presence.get_presence(group, limit=limit, offset=offset)

    async def get_presence_state(
        self, group: str | None = None, *, limit: int | None = None
    ) -> dict[str, Any]:
        """Who is present, per user, with counts (what presence diffs apply to): see docs."""
        return await presence.get_presence_state(group, limit=limit)

    # Timers -------------------------------------------------------------------------------

    def call_later(
        self, seconds: float, func: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> CallHandle:
        """Run ``func(*args, **kwargs)`` after ``seconds`` (sync or async).

        It runs with the scheduling command's state; cancelled if the connection closes.
        May be called from sync commands too (they run in worker threads). A connection may
        have ``MAX_TIMERS`` calls waiting, holding ``MAX_TIMER_BYTES`` in their arguments
        (and closures): past either, raises RateLimited (``rate_limited``).
        """
        return self.timers.call_later(seconds, func, *args, **kwargs)

    def cancel_calls(self) -> None:
        """Cancel every pending ``call_later`` (the connection closed)."""
        self.timers.cancel_all()
