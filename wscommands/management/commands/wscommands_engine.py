"""``manage.py wscommands_engine``: serve the WebSocket endpoint with the engine (picows).

Django (daphne or uvicorn) keeps serving HTTP; this process serves ``--path`` (``/ws/``) on
its own port, or on the same site behind a proxy that routes ``/ws/`` to it, and its own
``GET /metrics`` on that port (what Django's view answers). See docs/scaling.md, "The engine".
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string

from ...engine import ENGINE_MISSING
from ...engine.handshake import TrustedProxies
from ...engine.handshake import h11 as installed_h11
from ...engine.server import Engine, EngineUnavailable, Options

try:
    import uvloop
except ImportError:  # optional: the engine runs on asyncio's own loop then
    uvloop = None  # type: ignore[assignment]

#: The event loops ``--loop`` offers; ``auto`` is uvloop when it is installed.
LOOPS = ("auto", "asyncio", "uvloop")


class Command(BaseCommand):
    help = "Serve the wscommands WebSocket endpoint with the engine (picows) until SIGTERM."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
        parser.add_argument("--port", type=int, default=8001, help="port to listen on")
        parser.add_argument("--path", default="/ws/", help="the WebSocket path served")
        parser.add_argument(
            "--consumer",
            default="wscommands.server.consumer.CommandConsumer",
            help="a CommandConsumer subclass whose registry and connection_class to serve",
        )
        parser.add_argument(
            "--forwarded-allow-ips",
            default=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
            help="proxies whose X-Forwarded-For/-Proto are trusted: addresses or networks, "
            "comma-separated, or '*' (default: $FORWARDED_ALLOW_IPS or 127.0.0.1)",
        )
        parser.add_argument(
            "--max-frame-size",
            type=int,
            default=1024 * 1024,
            help="bytes: a bigger frame closes with 1009 before it is read (default 1 MiB)",
        )
        parser.add_argument(
            "--ping-interval",
            type=float,
            default=20.0,
            help="seconds of silence before a ping; no pong as long again closes (0: off)",
        )
        parser.add_argument(
            "--loop",
            choices=LOOPS,
            default="auto",
            help="the event loop: uvloop (its loop, call_soon and tasks' steps in C: about a "
            "tenth less CPU per frame) or asyncio's; auto: uvloop when installed",
        )
        parser.add_argument(
            "--handshake-timeout",
            type=float,
            default=5.0,
            help="seconds a client has to send its handshake request",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if installed_h11 is None:
            raise CommandError(ENGINE_MISSING)
        consumer = import_string(options["consumer"])
        try:
            proxies = TrustedProxies(options["forwarded_allow_ips"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        engine = Engine(
            Options(
                host=options["host"],
                port=options["port"],
                path=options["path"],
                registry=consumer.registry,
                connection_class=consumer.connection_class,
                proxies=proxies,
                max_frame_size=options["max_frame_size"],
                ping_interval=options["ping_interval"],
                handshake_timeout=options["handshake_timeout"],
            )
        )

        def ready(server: asyncio.Server) -> None:
            where = ", ".join(str(s.getsockname()[:2]) for s in server.sockets)
            self.stdout.write(f"wscommands engine serving {options['path']} on {where}")
            self.stdout.flush()

        try:
            with asyncio.Runner(loop_factory=loop_factory(options["loop"])) as runner:
                runner.run(engine.serve(ready))
        except EngineUnavailable as exc:
            raise CommandError(str(exc)) from exc


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop ``--loop`` asks for (None: asyncio's default)."""
    if choice == "uvloop" and uvloop is None:
        raise CommandError('--loop uvloop: uvloop is not installed (pip install "uvloop")')
    if choice == "asyncio" or uvloop is None:
        return None
    return uvloop.new_event_loop
