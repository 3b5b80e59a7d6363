"""Every use of another package's private internals, fenced in this one module.

wscommands leans on a few things daphne, Twisted, asyncio, Channels and channels_redis do not
promise. Each is reached only from here, each has a check in :func:`missing_internals`, run at
start-up (``apps.py``: a warning, once, for each one missing) and by
``tests/test_compat.py`` against the pinned versions. When one is missing the feature that
needs it switches off (the warning says which), nothing else breaks.

Verified with daphne 4.2.3, autobahn 26.10.2, Twisted 26.10.0, channels 4.3.2, channels-redis
4.3.0, asgiref 3.13.0 and CPython 3.11's asyncio.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import inspect
import logging
import types
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger("wscommands.connection")

#: What each internal is used for (the warning names the feature that switches off).
USES = {
    "daphne.handle_reply": "find the socket behind a connection (MAX_INBOX, MAX_OUTGOING_BACKLOG)",
    "uvicorn.protocol_transport": "find uvicorn's transport behind a connection "
    "(MAX_OUTGOING_BACKLOG under uvicorn)",
    "daphne.application_queue": "pause reading a client that sends too fast (MAX_INBOX)",
    "asyncio.queue_items": "weigh the frames daphne holds for a client (MAX_CLIENT_MEMORY)",
    "autobahn.fail_by_drop": "a close frame (1009) for a frame over daphne's own size cap",
    "twisted.write_buffer": "cut off a client that does not read (MAX_OUTGOING_BACKLOG)",
    "channels.session_send": "find the socket behind a session-wrapped connection",
    "asyncio.sighandler_noop": "tell a server's SIGTERM handler from asyncio's placeholder",
    "channels_redis.create_pool": "Redis connections for the redis backend (Sentinel, TLS)",
}
#: Bytes held by a Twisted transport: its written buffer, minus what was sent, plus the list
#: of chunks not yet joined into it.
_TWISTED_BUFFER = ("dataBuffer", "offset", "_tempDataLen")
_warned: set[str] = set()


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


def server_socket(send: Any, write_limit: int) -> ServerSocket | None:
    """The server's socket behind an ASGI ``send`` callable: daphne's, uvicorn's transport
    (its write buffer raised to ``write_limit`` bytes), or None under other servers.

    daphne hands the application ``functools.partial(server.handle_reply, protocol)``;
    uvicorn a method of its WebSocket protocol, which keeps its asyncio ``transport``.
    Channels' session middleware wraps either (``InstanceSessionWrapper.real_send``). daphne's
    protocol's ``transport`` is Twisted's; its ``application_queue`` the frames read but not
    yet handled.
    """
    for _ in range(8):  # middleware may wrap send more than once
        owner = getattr(send, "__self__", None)
        if not hasattr(owner, "real_send"):
            break
        send = owner.real_send
    if getattr(getattr(send, "func", None), "__name__", "") != "handle_reply":
        owner = getattr(send, "__self__", None)
        transport = getattr(owner, "transport", None)
        # An asyncio transport, or uvloop's (which does not subclass asyncio's).
        needed = ("get_write_buffer_size", "set_write_buffer_limits", "abort")
        if type(owner).__module__.startswith("uvicorn.") and all(
            hasattr(transport, name) for name in needed
        ):
            return AsyncioSocket(transport, write_limit)
        return None
    protocol = next(iter(send.args), None)
    if hasattr(protocol, "failByDrop"):
        # Autobahn drops the TCP connection without a close frame when it fails one, e.g.
        # for a frame over daphne's --websocket_max_message_size: the client cannot tell why
        # and may send the same frame again. Send the close frame (1009 for that case).
        protocol.failByDrop = False
    transport = getattr(protocol, "transport", None)
    needed = (*_TWISTED_BUFFER, "abortConnection", "pauseProducing", "resumeProducing")
    if transport is None or not all(hasattr(transport, name) for name in needed):
        _warn_once("twisted.write_buffer", "daphne's transport lacks its write buffer")
        return None
    queue = getattr(protocol, "application_queue", None)
    return DaphneSocket(transport, queue if hasattr(queue, "qsize") else None)


def is_asyncio_placeholder(handler: Any) -> bool:
    """True if a SIGTERM handler is asyncio's ``_sighandler_noop`` (no server's own handler).

    asyncio installs it with ``loop.add_signal_handler``; the real handler then lives in
    the loop, not in ``signal.getsignal``.
    """
    return getattr(handler, "__name__", "") == "_sighandler_noop"


def close_with_loop(loop: asyncio.AbstractEventLoop, cleanup: Callable[[], Awaitable[Any]]) -> None:
    """Run ``cleanup()`` on ``loop`` just before the loop closes (as channels_redis does).

    asyncio has no close hook: ``loop.close`` is wrapped on this one loop object. Tests run one
    loop per test; without this each would leave open Redis sockets behind.
    """
    original = loop.close

    def close(self: asyncio.AbstractEventLoop) -> None:
        self.close = original  # type: ignore[method-assign]
        if not self.is_running():
            # Best effort: the process may be exiting with Redis gone.
            with contextlib.suppress(Exception):
                self.run_until_complete(cleanup())
        original()

    loop.close = types.MethodType(close, loop)  # type: ignore[method-assign]


def redis_pool(host: dict[str, Any]) -> Any:
    """A redis-py connection pool from a channels_redis ``hosts`` entry (URL or Sentinel)."""
    # Imported here: channels_redis is an optional dependency (the "redis" extra).
    from channels_redis.utils import create_pool

    return create_pool(host)


def channel_suffix(channel: str) -> str:
    """The unique part of a process-local channel name (after Channels' ``!``)."""
    return channel.rpartition("!")[2]


def _has(module: str, path: str) -> bool:
    try:
        obj: Any = importlib.import_module(module)
    except ImportError:
        return False
    for name in path.split("."):
        if not hasattr(obj, name):
            return False
        obj = getattr(obj, name)
    return True


def _source_mentions(module: str, path: str, text: str) -> bool:
    if not _has(module, path):
        return False
    obj: Any = importlib.import_module(module)
    for name in path.split("."):
        obj = getattr(obj, name)
    try:
        return text in inspect.getsource(obj)
    except (OSError, TypeError):
        return False


def missing_internals() -> list[str]:
    """The internals of :data:`USES` the installed packages no longer have."""
    found = {
        "daphne.handle_reply": _source_mentions(
            "daphne.server", "Server.create_application", "partial(self.handle_reply, protocol)"
        ),
        "daphne.application_queue": _source_mentions(
            "daphne.ws_protocol", "WebSocketProtocol.applicationCreateWorked", "application_queue"
        ),
        "asyncio.queue_items": _source_mentions("asyncio.queues", "Queue._init", "self._queue"),
        "uvicorn.protocol_transport": _source_mentions(
            "uvicorn.protocols.websockets.websockets_sansio_impl",
            "WebSocketsSansIOProtocol.connection_made",
            "self.transport = transport",
        ),
        "autobahn.fail_by_drop": _source_mentions(
            "autobahn.websocket.protocol", "WebSocketProtocol._fail_connection", "failByDrop"
        ),
        "twisted.write_buffer": _has("twisted.internet.abstract", "FileDescriptor.dataBuffer")
        and _has("twisted.internet.abstract", "FileDescriptor.offset")
        and _source_mentions(
            "twisted.internet.abstract", "FileDescriptor.__init__", "_tempDataLen"
        ),
        "channels.session_send": _source_mentions(
            "channels.sessions", "InstanceSessionWrapper.__init__", "self.real_send"
        ),
        "asyncio.sighandler_noop": _has("asyncio.unix_events", "_sighandler_noop"),
        "channels_redis.create_pool": _has("channels_redis.utils", "create_pool"),
    }
    return [name for name, ok in found.items() if not ok]


def warn_missing_once() -> None:
    """Log one warning per missing internal of an installed package (start-up calls this)."""
    for name in missing_internals():
        package = name.partition(".")[0]
        if importlib.util.find_spec(package) is not None:  # not installed: nothing to warn
            _warn_once(name, f"{name} is not available in the installed {package}")


def _warn_once(name: str, what: str) -> None:
    if name in _warned:
        return
    _warned.add(name)
    logger.warning("wscommands: %s; switched off: %s", what, USES[name])
