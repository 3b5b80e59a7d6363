"""One connection's requests: run in the order received, a cap on how many may wait.

A request starts once every earlier non-concurrent request of its connection has finished;
a request whose commands are all ``concurrent`` does not hold up later ones. Waiting requests
are bounded by count (``MAX_PENDING_REQUESTS``) and by the bytes of their frames (the
connection's account, budget.py); more are refused with ``rate_limited``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from . import logs, metrics, resume
from .connection import Connection
from .execution import DEFAULT, run_default, run_request
from .idempotency import run_once
from .protocol import ADMIT, Decision, Request, error_reply, refuse
from .registry import Registry

#: Seconds a running request may go on after its client has gone.
DISCONNECT_GRACE = 5.0

#: What a request gives back: the reply (None: no reply) and a close code (None: stay open).
Outcome = tuple[dict[str, Any] | None, int | None]
#: Where outcomes go (the consumer sends the reply, then closes if asked).
Respond = Callable[[dict[str, Any] | None, int | None], Awaitable[None]]


class RequestQueue:
    """Schedules one connection's requests; hands each outcome to ``respond``."""

    def __init__(self, connection: Connection, registry: Registry, respond: Respond):
        self.connection = connection
        self.registry = registry
        self.respond = respond
        self.halted = False
        self._last_serial: asyncio.Task | None = None
        self._pending: set[asyncio.Task] = set()
        self._running: set[asyncio.Task] = set()

    def is_concurrent(self, request: Request) -> bool:
        """True if every command of the request is registered ``concurrent``."""
        for name, _ in request.commands:
            cmd = self.registry.get(name)
            if cmd is None or not cmd.concurrent:
                return False
        return bool(request.commands)

    def submit(self, request: Request, size: int) -> Decision:
        """Queue a request (its frame ``size`` bytes); refused (``rate_limited``, with its
        request_id) over the connection's limits."""
        if resume.is_resume(request.commands):
            return self._schedule(
                lambda: self._resume(request), False, size, request_id=request.request_id
            )
        return self._schedule(
            lambda: self._run(request), self.is_concurrent(request), size, request.request_id
        )

    async def _run(self, request: Request) -> Outcome:
        if request.idempotency_key is None:
            return await run_request(self.connection, request, self.registry)
        # A request with an idempotency key runs once; its retries replay the recorded reply.
        return await run_once(
            self.connection, request, lambda: run_request(self.connection, request, self.registry)
        )

    async def _resume(self, request: Request) -> Outcome:
        await resume.handle(self.connection, request.request_id, request.commands[0][1])
        return None, None

    @property
    def has_default(self) -> bool:
        """Whether a ``default`` command takes frames that are not JSON."""
        return self.registry.get(DEFAULT) is not None

    def submit_default(self, text: str) -> Decision:
        """Queue a frame that is not JSON for the ``default`` command."""
        default = self.registry.get(DEFAULT)

        async def run() -> Outcome:
            return await run_default(self.connection, default, text), None

        return self._schedule(run, concurrent=False, size=len(text))

    def _schedule(
        self,
        run: Callable[[], Awaitable[Outcome]],
        concurrent: bool,
        size: int,
        request_id: str | int | None = None,
    ) -> Decision:
        resources = self.connection.resources
        refusal = resources.reserve_request(size)
        if refusal is not None:
            metrics.frame_refused("too_many_pending")
            logs.client_event("pending", "%s: refused", refusal.message)
            # The one reply this request gets: it carries the request_id clients match on.
            return refuse(error_reply(refusal, request_id))
        task = asyncio.create_task(self._run_after(self._last_serial, run))
        self._pending.add(task)

        def done(task: asyncio.Task) -> None:
            self._pending.discard(task)
            # Its frame is held until the request is over (run, refused or cancelled).
            resources.release_request(size)

        task.add_done_callback(done)
        if not concurrent:
            self._last_serial = task
        return ADMIT

    async def _run_after(
        self, previous: asyncio.Task | None, run: Callable[[], Awaitable[Outcome]]
    ) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        if self.halted:
            return
        task = asyncio.current_task()
        self._running.add(task)
        try:
            reply, close_code = await run()
            await self.respond(reply, close_code)
        except Exception as exc:  # run_request catches command errors; this is a bug of ours
            logs.unexpected("request", "request failed", exc=exc)
        finally:
            self._running.discard(task)

    def halt(self) -> None:
        """Start nothing more (the connection is closing); running requests go on."""
        self.halted = True

    async def stop(self, grace: float = DISCONNECT_GRACE) -> None:
        """Drop waiting requests; give running ones ``grace`` seconds, then cancel them."""
        self.halted = True
        for task in self._pending - self._running:
            task.cancel()
        if self._running:
            _, late = await asyncio.wait(self._running, timeout=grace)
            for task in late:
                task.cancel()
