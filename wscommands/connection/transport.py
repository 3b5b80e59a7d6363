"""What a connection needs of the server that drives its socket.

The Channels consumer (:class:`~wscommands.server.consumer.CommandConsumer`) is one; another
server could drive the same :class:`~.connection.Connection` by offering these few names.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol

from ..commands.registry import Registry


class Transport(Protocol):
    """One socket as the connection writes to it: send text, close, cut off."""

    #: The ASGI scope of the handshake (``session``, ``user``, ``client``, ``headers``...).
    scope: dict[str, Any]
    #: The commands this socket's frames run.
    registry: Registry

    def push_text(self, text: str) -> Awaitable[None]:
        """Write one text frame (dropped once the socket is closing); await it."""
        ...

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        """Close the socket with ``code`` (one of :class:`~wscommands.wire.protocol.CloseCode`)."""
        ...

    def cut_off(self) -> None:
        """Stop writing to a client over its outgoing budget and close it (4429)."""
        ...
