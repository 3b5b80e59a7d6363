"""The engine's server: the listening socket, the handshake gate, graceful shutdown.

Each TCP connection first meets a :class:`Gate`, which reads the HTTP upgrade request and
does what the ASGI path does before its consumer accepts: the path, the Origin and
``ALLOWED_HOSTS`` (HTTP 403), the session and user (loaded in the worker pool), admission
(shutdown, caps) and registration with the hub. Only then is the socket handed to picows,
which answers 101: pushes flow from the moment the client sees the handshake complete.
A plain ``GET /metrics`` is answered instead (its Host checked against ``ALLOWED_HOSTS``,
then in the worker pool, as Django's sync view runs in a thread), then the connection
closed: one request per connection, its head bounded as a handshake's.
SIGTERM (and SIGINT) run the same graceful shutdown as under daphne (guards/shutdown.py):
every connection closed with 4503, hooks run, then the process exits.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpResponse

from .._internal.compat.picows_server import probe, server_protocol
from .._internal.fairpool import Share, use_share
from .._internal.threads import run_sync, sweep_old_connections
from ..commands.registry import Registry
from ..commands.registry import registry as default_registry
from ..connection.connection import Connection
from ..guards.origins import origin_allowed, request_host
from ..guards.shutdown import get_shutdown
from ..observability import logs
from . import ENGINE_MISSING
from .handshake import (
    MAX_HEAD,
    BadHandshake,
    Head,
    TrustedProxies,
    asks_for_metrics,
    build_scope,
    client_address,
    cookie_session_key,
    encode,
    has_metrics_token,
    load_identity,
    parse_head,
    response,
    scrape,
    session_key,
)
from .socket import EngineSocket

try:
    import aiofastnet
except ImportError:  # the "engine" extra (picows depends on it)
    aiofastnet = None  # type: ignore[assignment]

logger = logging.getLogger("wscommands.engine")


class EngineUnavailable(RuntimeError):
    """The engine cannot run here (picows missing, or a picows it does not know)."""


@dataclass
class Options:
    """How an engine serves (the management command's options)."""

    host: str = "127.0.0.1"
    port: int = 8001
    #: The WebSocket path served (an upgrade to any other: HTTP 404).
    path: str = "/ws/"
    #: The commands served (the default registry unless a consumer names another).
    registry: Registry = field(default_factory=lambda: default_registry)
    connection_class: type[Connection] = Connection
    proxies: TrustedProxies = field(default_factory=lambda: TrustedProxies("127.0.0.1"))
    #: picows's own cap on a frame (1009 past it), as daphne's --websocket_max_message_size.
    max_frame_size: int = 1024 * 1024
    #: Seconds of silence before a ping; as long again without a pong closes (0: never).
    ping_interval: float = 20.0
    #: Seconds a client has to send its whole handshake request (HTTP 408 after).
    handshake_timeout: float = 5.0
    #: The class of each connection's socket (a subclass may handle frames its own way).
    socket_class: type[EngineSocket] = EngineSocket


def feed(protocol: asyncio.BufferedProtocol, data: bytes) -> None:
    """Hand ``data`` to a buffered protocol as if it had just been read."""
    view = memoryview(data)
    while view:
        buffer = memoryview(protocol.get_buffer(len(view)))
        size = min(len(buffer), len(view))
        buffer[:size] = view[:size]
        protocol.buffer_updated(size)
        view = view[size:]


def _nobody() -> None:
    """The user of a request not identified yet: nobody."""


class Gate(asyncio.BufferedProtocol):
    """One TCP connection until its handshake is admitted (then picows's)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.buffer = bytearray(4096)
        self.head = bytearray()
        self.lost = False
        self.task: asyncio.Task | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        loop = asyncio.get_running_loop()
        timeout = self.engine.options.handshake_timeout
        self.timer = loop.call_later(timeout, self.refuse, 408, "handshake too slow")

    def get_buffer(self, sizehint: int) -> memoryview:
        return memoryview(self.buffer)

    def buffer_updated(self, nbytes: int) -> None:
        self.head += self.buffer[:nbytes]
        end = self.head.find(b"\r\n\r\n")
        if end > MAX_HEAD or (end < 0 and len(self.head) > MAX_HEAD):
            self.refuse(431, "request head too large")
        elif end >= 0:
            self.transport.pause_reading()
            self.timer.cancel()
            self.task = self.engine.spawn(self.admit())

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.timer.cancel()

    def refuse(self, status: int, message: str) -> None:
        """Answer ``status`` and close (the handshake never opens)."""
        self.reply(response(status, message))

    def reply(self, answer: bytes) -> None:
        """Write ``answer``, the connection's only one, and close once it is sent."""
        self.timer.cancel()
        if not self.lost and not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()
            # A client that does not read it holds it no longer than it may take on a head.
            timeout = self.engine.options.handshake_timeout
            self.timer = asyncio.get_running_loop().call_later(timeout, self.transport.abort)

    # Until a request is identified, its sync calls are an anonymous client's (``anonymous``,
    # its address): held to the worker pool's anonymous share and per-IP cap, so a flood of
    # forged session cookies cannot starve users' commands. Without a cookie there is nobody
    # to look up, and no call to make.

    async def identify(self, key: str | None, anonymous: Share) -> tuple[Any, Any]:
        """The session and user of session key ``key``."""
        if key is None:
            return load_identity(None)  # an empty session, AnonymousUser: no query
        use_share(anonymous)
        return await run_sync(load_identity, key)

    async def scrape(self, head: Head, anonymous: Share) -> HttpResponse:
        """The answer to ``GET /metrics``: with the token, Prometheus's (it waits for no
        anonymous work); else a session's user decides, looked up as ``anonymous``."""
        key = cookie_session_key(head)
        if has_metrics_token(head):
            return await run_sync(scrape, head, key)
        if key is None:
            return scrape(head, None)  # a 403 or 404 that needs no query
        use_share(anonymous)
        return await run_sync(scrape, head, key)

    async def admit(self) -> None:
        """Check, identify, admit and register; then let picows answer 101 (or answer a
        ``GET /metrics`` and close)."""
        options = self.engine.options
        transport = self.transport
        try:
            head = parse_head(bytes(self.head))
            peer = transport.get_extra_info("peername")[:2]
            anonymous = Share(_nobody, client_address(head, peer[0], options.proxies))
            if asks_for_metrics(head):
                # As Django, which answers 400 before any view runs.
                if request_host({"headers": head.headers}) is None:
                    raise BadHandshake(400, "invalid Host header: not in ALLOWED_HOSTS")
                self.reply(encode(await self.scrape(head, anonymous)))
                return
            scope = build_scope(
                head, peer, transport.get_extra_info("sockname")[:2], options.proxies
            )
            if scope["path"] != options.path:
                raise BadHandshake(404, "not found")
            if not origin_allowed(scope):
                raise BadHandshake(403, "origin not allowed")
            scope["session"], scope["user"] = await self.identify(
                session_key(scope["cookies"]), anonymous
            )
        except BadHandshake as exc:
            self.refuse(exc.status, str(exc))
            return
        except Exception:  # the database may be down: refuse this one, serve the next
            logger.exception("engine request failed")
            self.refuse(500, "server error")
            return
        if self.lost:
            return
        socket = options.socket_class(scope, options.registry, options.connection_class, transport)
        socket.start()
        socket.refusal = await asyncio.create_task(socket.enter(), context=socket.context)
        if self.lost or transport.is_closing():  # gone while it was registered: undo that
            socket.spawn(socket.finish(1006))
            return
        protocol = server_protocol(
            lambda request: socket,
            logger=self.engine.picows_logger,
            max_frame_size=options.max_frame_size,
            ping_interval=options.ping_interval,
            handshake_timeout=options.handshake_timeout,
        )
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        feed(protocol, bytes(self.head))
        if socket.ws is None:  # gone meanwhile, or picows refused the upgrade (HTTP 400)
            socket.spawn(socket.finish(1006))
            return
        transport.resume_reading()


class Engine:
    """One engine process: serves ``options.path`` until SIGTERM (see the module)."""

    def __init__(self, options: Options):
        self.options = options
        self.tasks: set[asyncio.Task] = set()
        self.stopped: asyncio.Event | None = None
        self.server: asyncio.Server | None = None
        # picows logs each connection at INFO: quiet unless the project asks for it.
        picows_logger = logging.getLogger("picows.server")
        if picows_logger.level == logging.NOTSET:
            picows_logger.setLevel(logging.WARNING)
        # An adapter: given a Logger, picows makes a child Logger per connection.
        self.picows_logger = logging.LoggerAdapter(picows_logger, {})

    def spawn(self, coroutine: Any) -> asyncio.Task:
        """A task kept until it is done (so it is not garbage-collected while it runs)."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def serve(self, ready: Callable[[asyncio.Server], None] | None = None) -> None:
        """Listen, serve until stopped (SIGTERM, SIGINT or :meth:`stop`), then close."""
        if aiofastnet is None:
            raise EngineUnavailable(ENGINE_MISSING)
        problem = probe()
        if problem is not None:
            raise EngineUnavailable(f"{problem}: {ENGINE_MISSING}")
        loop = asyncio.get_running_loop()
        self.stopped = asyncio.Event()
        self._install_signals(loop)
        self.server = await aiofastnet.create_server(
            loop, lambda: Gate(self), self.options.host, self.options.port, reuse_address=True
        )
        sweeper = self.spawn(self._sweep())
        if ready is not None:
            ready(self.server)
        try:
            await self.stopped.wait()
        finally:
            sweeper.cancel()
            self.server.close()
            logger.info("engine stopped")

    def stop(self, *args: Any) -> None:
        """Stop serving now (from any thread, or as a signal handler)."""
        loop, stopped = self.server.get_loop() if self.server else None, self.stopped
        if loop is not None and stopped is not None:
            loop.call_soon_threadsafe(stopped.set)

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        # The server's own handler, which the graceful shutdown wraps and calls when done
        # (as it wraps daphne's and uvicorn's).
        signal.signal(signal.SIGTERM, self.stop)
        shutdown = get_shutdown()

        def interrupted() -> None:  # Ctrl-C: the same graceful stop; a second one: now
            if shutdown.shutting_down:
                self.stop()
            else:
                logs.process_task(shutdown.run(self.stop), "wscommands-shutdown")

        loop.add_signal_handler(signal.SIGINT, interrupted)

    async def _sweep(self) -> None:
        # What Channels' per-message check did for code using asgiref's thread (see threads).
        while True:
            await asyncio.sleep(1.0)
            await sweep_old_connections()
