"""What the hub, messaging, presence and streams know of a connection: a small interface.

:class:`~wscommands.connection.connection.Connection` implements it. The packages below
``connection`` (delivery, streams, presence, ops, runtime) depend on this interface only,
never on the connection or the consumer, so they sit below both.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser
    from django.contrib.sessions.backends.base import SessionBase

    from ..streams.cursor import StreamCursor

#: Separates the process's channel from the local number in a connection id
#: (``<process channel>~<n>``), so a message for an id goes straight to its process.
ID_SEPARATOR = "~"


class Peer(Protocol):
    """One local connection as the hub sees it: an id, its user and groups, a way to write."""

    #: Unique across processes: ``<process channel>~<local number>`` (set once registered).
    id: str = ""
    #: The primary key of the connection's user (None: anonymous).
    user_pk: Any = None
    #: The wscommands groups the connection is in.
    groups: set[str]
    #: What a resumable connection (``?resume=1``) was sent per stream; None otherwise.
    streams: StreamCursor | None = None

    @property
    def user(self) -> AbstractBaseUser | AnonymousUser | None:
        """The Django user (AnonymousUser when not logged in); presence shows its username."""
        return None

    def is_authenticated(self) -> bool:
        """Whether the connection's user is logged in."""
        return bool(getattr(self.user, "is_authenticated", False))

    @property
    def session(self) -> SessionBase | None:
        """The Django session it acts under (None: none); its sockets close when it ends."""
        return None

    def push_text(self, text: str) -> Awaitable[None]:
        """Write JSON text to the client (dropped once the connection has closed); await it.

        A method returning the awaitable rather than a coroutine of its own: the fan-out
        calls it once per recipient, and each layer of coroutine costs a frame per write.
        """
        raise NotImplementedError

    async def close(self, code: int = 1000) -> None:
        """Close the connection with a code from :class:`~wscommands.wire.codes.CloseCode`."""
        raise NotImplementedError


def split_id(connection_id: str) -> tuple[str, str]:
    """``(process channel, local number)`` of a connection id; ``("", "")`` if not one of ours."""
    process, sep, local = connection_id.rpartition(ID_SEPARATOR)
    return (process, local) if sep else ("", "")
