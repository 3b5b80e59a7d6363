"""The servers' sockets behind a connection (daphne's Twisted transport and frame queue,
uvicorn's asyncio transport), and which of their exceptions mean "the client has gone".

Part of the compat fence (see the package): nothing here is those servers' public API.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .uses import warn_once

#: Bytes held by a Twisted transport: its written buffer, minus what was sent, plus the list
#: of chunks not yet joined into it.
_TWISTED_BUFFER = ("dataBuffer", "offset", "_tempDataLen")
#: What flow control calls on an asyncio transport (uvloop's does not subclass asyncio's).
_ASYNCIO_TRANSPORT = ("get_write_buffer_size", "set_write_buffer_limits", "abort")
#: Exceptions that only say the client's socket has closed, as (module, class): autobahn's
#: (daphne) and websockets' (uvicorn's websockets implementations); a subclass counts too
#: (ConnectionClosedOK, ConnectionClosedError). uvicorn's own ClientDisconnected is an OSError.
CLOSED_ERRORS = {
    "autobahn.disconnected": ("autobahn.exception", "Disconnected"),
    "websockets.connection_closed": ("websockets.exceptions", "ConnectionClosed"),
}
_CLOSED = frozenset(CLOSED_ERRORS.values())


def is_closed_error(exc: BaseException) -> bool:
    """Whether ``exc`` only says the client's socket has closed (not a bug worth a traceback).

    Compared by module and class name along the exception's classes: importing the three
    packages to get the classes would load websockets and uvicorn under daphne.
    """
    if isinstance(exc, (OSError, EOFError)):
        return True
    return any((c.__module__, c.__name__) in _CLOSED for c in type(exc).__mro__)


class ServerSocket:
    """What flow control reaches of a connection's socket in the server (daphne, uvicorn)."""

    #: The frames read but not yet taken by the application (None: not reachable).
    inbox: asyncio.Queue | None = None
    #: Whether reading the client's socket may be paused (the server does not do it itself).
    can_pause_reading = False

    def waiting_frames(self) -> int:
        """Frames read from the client that the application has not taken yet."""
        return 0

    def waiting_bytes(self) -> int:
        """Characters of those frames."""
        return 0

    def pause_reading(self) -> None:
        """Stop reading the client's socket (TCP then pushes back on the client)."""

    def resume_reading(self) -> None:
        """Read the client's socket again."""

    def unsent_bytes(self) -> int:
        """Bytes written to the client that the kernel has not accepted yet."""
        raise NotImplementedError

    def abort(self) -> None:
        """Drop the TCP connection at once, without a close frame."""
        raise NotImplementedError


class AsyncioSocket(ServerSocket):
    """uvicorn's transport for one connection (asyncio's or uvloop's; its public API only)."""

    def __init__(self, transport: Any, write_limit: int):
        self.transport = transport
        # uvicorn makes a send wait while the transport is over its high-water mark (64 KiB
        # by default): a client that does not read would hold up every fan-out. Raised to
        # MAX_OUTGOING_BACKLOG, where flow control cuts the client off instead of writing.
        transport.set_write_buffer_limits(high=write_limit)

    def unsent_bytes(self) -> int:
        return self.transport.get_write_buffer_size()

    def abort(self) -> None:
        self.transport.abort()


class DaphneSocket(ServerSocket):
    """The Twisted transport and frame queue daphne keeps for one connection."""

    can_pause_reading = True

    def __init__(self, transport: Any, inbox: asyncio.Queue | None):
        self.transport = transport
        self.inbox = inbox

    def waiting_frames(self) -> int:
        """Frames read from the client that the application has not taken yet."""
        return self.inbox.qsize() if self.inbox is not None else 0

    def waiting_bytes(self) -> int:
        """Characters of the frames read from the client that the application has not taken
        yet (0 when the queue's items cannot be read)."""
        items = getattr(self.inbox, "_queue", None)
        if not items:
            return 0
        return sum(
            len(m.get("text") or m.get("bytes") or "") for m in list(items) if isinstance(m, dict)
        )

    def pause_reading(self) -> None:
        """Stop reading the client's socket (TCP then pushes back on the client)."""
        self.transport.pauseProducing()

    def resume_reading(self) -> None:
        """Read the client's socket again."""
        self.transport.resumeProducing()

    def unsent_bytes(self) -> int:
        """Bytes written to the client that the kernel has not accepted yet."""
        t = self.transport
        return len(t.dataBuffer) - t.offset + t._tempDataLen

    def abort(self) -> None:
        """Drop the TCP connection at once, without a close frame."""
        self.transport.abortConnection()


def unwrap_send(send: Any) -> Any:
    """The server's own ``send`` under Channels' session middleware, which wraps it (maybe more
    than once) in ``InstanceSessionWrapper.send``, keeping the original as ``real_send``."""
    for _ in range(8):
        owner: Any = getattr(send, "__self__", None)
        if not hasattr(owner, "real_send"):
            break
        send = owner.real_send
    return send


def daphne_protocol(send: Any) -> Any:
    """daphne's protocol object behind its ``send``, ``functools.partial(server.handle_reply,
    protocol)``; None for another server's."""
    if getattr(getattr(send, "func", None), "__name__", "") != "handle_reply":
        return None
    return next(iter(getattr(send, "args", ())), None)


def keep_close_frames(protocol: Any) -> None:
    """Make autobahn send a close frame when it fails a connection, instead of dropping it.

    It drops the TCP connection without a close frame when it fails one, e.g. for a frame
    over daphne's --websocket_max_message_size: the client cannot tell why and may send the
    same frame again. With this it gets 1009 for that case.
    """
    protocol.failByDrop = False


def server_socket(send: Any, write_limit: int) -> ServerSocket | None:
    """The server's socket behind an ASGI ``send`` callable: daphne's, uvicorn's transport
    (its write buffer raised to ``write_limit`` bytes), or None under other servers.

    uvicorn's ``send`` is a method of its WebSocket protocol, which keeps its asyncio
    ``transport``; daphne's protocol's ``transport`` is Twisted's, its ``application_queue``
    the frames read but not yet handled. A uvicorn whose protocol lacks the transport is
    warned about (once): that is the implementation actually serving.
    """
    send = unwrap_send(send)
    protocol = daphne_protocol(send)
    if protocol is None:
        owner = getattr(send, "__self__", None)
        if not type(owner).__module__.startswith("uvicorn."):
            return None
        transport = getattr(owner, "transport", None)
        if not all(hasattr(transport, name) for name in _ASYNCIO_TRANSPORT):
            what = f"uvicorn's {type(owner).__name__} keeps no asyncio transport"
            warn_once("uvicorn.protocol_transport", what)
            return None
        return AsyncioSocket(transport, write_limit)
    if hasattr(protocol, "failByDrop"):
        keep_close_frames(protocol)
    transport = getattr(protocol, "transport", None)
    needed = (*_TWISTED_BUFFER, "abortConnection", "pauseProducing", "resumeProducing")
    if transport is None or not all(hasattr(transport, name) for name in needed):
        warn_once("twisted.write_buffer", "daphne's transport lacks its write buffer")
        return None
    queue = getattr(protocol, "application_queue", None)
    return DaphneSocket(transport, queue if hasattr(queue, "qsize") else None)
