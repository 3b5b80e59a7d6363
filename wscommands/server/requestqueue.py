"""One connection's requests: run in the order received, a cap on how many may wait.

A request starts once every earlier non-concurrent request of its connection has finished;
a request whose commands are all ``concurrent`` does not hold up later ones. Waiting requests
are bounded by count (``MAX_PENDING_REQUESTS``) and by the bytes of their frames (the
connection's account, budget.py); more are refused with ``rate_limited``.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from ..commands.registry import Registry
from ..connection.connection import Connection
from ..observability import logs, metrics
from ..wire.protocol import ADMIT, Decision, Request, encode_reply, error_reply, refuse
from . import resume
from .execution import DEFAULT, run_default, run_request
from .idempotency import run_once

#: Seconds a running request may go on after its client has gone.
DISCONNECT_GRACE = 5.0

#: The name of every request's task.
TASK_NAME = "wscommands-request"
#: What a request gives back: the reply (None: no reply) and a close code (None: stay open).
Outcome = tuple[dict[str, Any] | None, int | None]


class RequestQueue:
    """Schedules one connection's requests; each reply goes to ``send`` (as JSON text), then
    ``close`` if the request asks for it (a failed ``authenticate``)."""

    def __init__(
        self,
        connection: Connection,
        registry: Registry,
        send: Callable[[str], Awaitable[None]],
        close: Callable[[int], Awaitable[None]],
    ):
        self.connection = connection
        self.registry = registry
        self.send = send
        self.close = close
        self.halted = False
        self._last_serial: asyncio.Task | None = None
        #: Every request not over yet, and whether it has started.
        self._slots: set[_Slot] = set()
        self._loop: asyncio.AbstractEventLoop | None = None  # the first request's

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
        run = functools.partial(run_request, self.connection, request, self.registry)
        if request.idempotency_key is not None:
            # It runs once; its retries are answered from the recorded reply.
            run = functools.partial(run_once, self.connection, request, run)
        return self._schedule(run, self.is_concurrent(request), size, request.request_id)

    async def _resume(self, request: Request) -> Outcome:
        await resume.handle(self.connection, request.request_id, request.commands[0][1])
        return None, None

    @property
    def has_default(self) -> bool:
        """Whether a ``default`` command takes frames that are not JSON."""
        return self.registry.get(DEFAULT) is not None

    def submit_default(self, text: str, size: int) -> Decision:
        """Queue a frame that is not JSON (``size`` bytes) for the ``default`` command."""
        default = self.registry.get(DEFAULT)
        assert default is not None  # called only when has_default

        async def run() -> Outcome:
            return await run_default(self.connection, default, text), None

        return self._schedule(run, concurrent=False, size=size)

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
        slot = _Slot()
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        coroutine = self._run_after(self._last_serial, run, size, slot)
        if loop.get_task_factory() is None:
            # Named: asyncio would format a "Task-<n>" name for each request otherwise (and
            # uvloop's create_task formats it, then renames the task).
            slot.task = task = asyncio.Task(coroutine, loop=loop, name=TASK_NAME)
        else:  # an application's factory (instrumentation, eager tasks) makes it
            slot.task = task = loop.create_task(coroutine, name=TASK_NAME)
        self._slots.add(slot)
        if not concurrent:
            self._last_serial = task
        return ADMIT

    async def _run_after(
        self,
        previous: asyncio.Task | None,
        run: Callable[[], Awaitable[Outcome]],
        size: int,
        slot: _Slot,
    ) -> None:
        # Its own bookkeeping, in its own finally: no done callback and no current_task()
        # per request (each costs about a microsecond on the engine's per-frame path). A
        # request cancelled before it started is one of a connection that is over, whose
        # account is closed already (Endpoint.finish): nothing is left to release then.
        try:
            if previous is not None and not previous.done():
                await asyncio.wait([previous])
            if self.halted:
                return
            slot.started = True
            reply, close_code = await run()
            if reply is not None:
                await self.send(encode_reply(reply))
            if close_code is not None:
                await self.close(close_code)
        except Exception as exc:  # run_request catches command errors; this is a bug of ours
            logs.unexpected("request", "request failed", exc=exc)
        finally:
            self._slots.discard(slot)
            # Its frame is held until the request is over (run, refused or cancelled).
            self.connection.resources.release_request(size)

    def halt(self) -> None:
        """Start nothing more (the connection is closing); running requests go on."""
        self.halted = True

    async def stop(self, grace: float = DISCONNECT_GRACE) -> None:
        """Drop waiting requests; give running ones ``grace`` seconds, then cancel them."""
        self.halted = True
        running = {slot.task for slot in self._slots if slot.started}
        for slot in self._slots:
            if not slot.started:
                slot.task.cancel()
        if running:
            _, late = await asyncio.wait(running, timeout=grace)
            for task in late:
                task.cancel()


class _Slot:
    """One request of the queue: its task, and whether it has started running."""

    __slots__ = ("started", "task")

    def __init__(self) -> None:
        self.started = False
        self.task: asyncio.Task
