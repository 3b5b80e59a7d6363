"""What the hub and messaging know of a connection: a small public interface.

:class:`~wscommands.connection.Connection` implements it. The fan-out modules depend on this
interface only, never on the connection or the consumer, so they sit below both.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

#: Separates the process's channel from the local number in a connection id
#: (``<process channel>~<n>``), so a message for an id goes straight to its process.
ID_SEPARATOR = "~"


class Peer:
    """One local connection as the hub sees it: an id, its user and groups, a way to write."""

    #: Unique across processes: ``<process channel>~<local number>`` (set once registered).
    id: str = ""
    #: The primary key of the connection's user (None: anonymous).
    user_pk: Any = None
    #: The wscommands groups the connection is in.
    groups: set[str]
    #: The Django session it acts under (None: none); its sockets close when it ends.
    session: Any = None

    def push_text(self, text: str) -> Awaitable[None]:
        """Write JSON text to the client (dropped once the connection has closed); await it.

        A method returning the awaitable rather than a coroutine of its own: the fan-out
        calls it once per recipient, and each layer of coroutine costs a frame per write.
        """
        raise NotImplementedError

    async def close(self, code: int = 1000) -> None:
        """Close the connection with a code from :class:`~wscommands.protocol.CloseCode`."""
        raise NotImplementedError


def split_id(connection_id: str) -> tuple[str, str]:
    """``(process channel, local number)`` of a connection id; ``("", "")`` if not one of ours."""
    process, sep, local = connection_id.rpartition(ID_SEPARATOR)
    return (process, local) if sep else ("", "")
