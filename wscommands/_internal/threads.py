"""Running sync code (ORM calls, signals, sync commands) off the event loop, fairly.

asgiref's default (``thread_sensitive=True``) runs every sync call of a process on one
thread, so one slow ORM call would hold up every connection. wscommands runs them in a
pool of its own (``WSCOMMANDS["WORKER_THREADS"]``) and, like Channels'
``database_sync_to_async``, closes stale database connections around each call.

The pool is shared fairly (:class:`FairPool`): one connection's calls hold at most
``WORKER_THREADS_PER_CONNECTION`` threads, anonymous connections together at most
``ANONYMOUS_WORKER_SHARE`` of the pool (the rest is kept for logged-in users), the anonymous
connections of one client IP at most ``ANONYMOUS_WORKER_THREADS_PER_IP``, the connections of
one user at most ``WORKER_THREADS_PER_USER``, and when calls wait, a freed thread goes to the
client (then the connection) running the fewest. A connection's calls carry
its :class:`Share` in a context variable (:func:`use_share`), set by the consumer.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from asgiref.sync import iscoroutinefunction
from channels.db import DatabaseSyncToAsync, aclose_old_connections
from django.dispatch import Signal

from ..conf import wscommands_settings
from ..observability import metrics
from .runtime import RUNTIME, Part

T = TypeVar("T")

#: Seconds between two sweeps of stale database connections on the frame path.
SWEEP_INTERVAL = 1.0
_next_sweep = 0.0


class Share:
    """One connection's claim on the worker pool: how many of its calls run now."""

    def __init__(self, user: Callable[[], Any], address: str | None = None):
        #: Asked at each call: the primary key of the connection's user (None: anonymous).
        self.user = user
        #: The client's IP address (None: not known): its anonymous calls are counted by it.
        self.address = address
        self.running = 0

    def claim(self) -> Claim:
        """Whom a call made now is counted against: the user, else the client's IP."""
        pk = self.user()
        if pk is not None:
            return Claim(False, ("user", pk))
        return Claim(True, ("ip", self.address) if self.address else None)


@dataclass(frozen=True)
class Claim:
    """What one call's slot counts against: the anonymous share or not, and its client
    (``("user", pk)`` or ``("ip", address)``; None: not known)."""

    anonymous: bool
    client: tuple[str, Any] | None


#: The claim of a call made outside any connection (start-up code, management commands).
NO_CLAIM = Claim(False, None)


#: The share of the connection the running code serves (None: not a connection's).
current_share: contextvars.ContextVar[Share | None] = contextvars.ContextVar(
    "wscommands_worker_share", default=None
)


def use_share(share: Share) -> None:
    """Charge the sync calls of the current task (and tasks it starts) to ``share``."""
    current_share.set(share)


@dataclass(eq=False)
class _Waiter:
    share: Share | None
    claim: Claim
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future = field(repr=False)
    granted: bool = False


class FairPool:
    """``WORKER_THREADS`` threads, shared out per connection, per client (a user, or the IP of
    anonymous connections) and between anonymous connections and users.

    Slots are counted under a lock (calls end in worker threads, connections may live on
    several loops); a call takes a slot before it is submitted and gives it back when its
    thread is done with it, so the counts match the threads really busy.
    """

    def __init__(
        self,
        size: int,
        per_share: int,
        anonymous_share: float,
        per_address: int | None = None,
        per_user: int | None = None,
    ):
        self.size = size
        self.per_share = max(1, min(per_share, size))
        self.anonymous_limit = max(1, int(size * anonymous_share))
        #: The most threads one client holds: per IP for anonymous calls, per user otherwise.
        self.caps = {"ip": per_address, "user": per_user}
        self.executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="wscommands")
        self.busy = 0
        self.anonymous_busy = 0
        #: Threads held per client.
        self.by_client: Counter[tuple[str, Any]] = Counter()
        self.waiting: list[_Waiter] = []
        self._lock = threading.Lock()

    def _eligible(self, share: Share | None, claim: Claim) -> bool:
        if self.busy >= self.size:
            return False
        if share is not None and share.running >= self.per_share:
            return False
        if claim.anonymous and self.anonymous_busy >= self.anonymous_limit:
            return False
        if claim.client is None:
            return True
        cap = self.caps[claim.client[0]]
        return cap is None or self.by_client[claim.client] < cap

    def _take(self, share: Share | None, claim: Claim) -> None:
        self.busy += 1
        if share is not None:
            share.running += 1
        self.anonymous_busy += claim.anonymous
        if claim.client is not None:
            self.by_client[claim.client] += 1

    def _give_back(self, share: Share | None, claim: Claim) -> None:
        self.busy -= 1
        if share is not None:
            share.running -= 1
        self.anonymous_busy -= claim.anonymous
        if claim.client is not None:
            self.by_client[claim.client] -= 1
            if not self.by_client[claim.client]:
                del self.by_client[claim.client]
        self._dispatch()

    def _load(self, waiter: _Waiter) -> tuple[int, int]:
        client = 0 if waiter.claim.client is None else self.by_client[waiter.claim.client]
        return client, 0 if waiter.share is None else waiter.share.running

    def _dispatch(self) -> None:
        # Grant freed slots to the eligible waiter whose client, then connection, runs the
        # fewest calls (the oldest among equals): a client with many calls waiting gets no
        # more turns than one with a single call.
        while self.waiting and self.busy < self.size:
            best: _Waiter | None = None
            for waiter in self.waiting:
                if self._eligible(waiter.share, waiter.claim) and (
                    best is None or self._load(waiter) < self._load(best)
                ):
                    best = waiter
            if best is None:
                return
            self.waiting.remove(best)
            best.granted = True
            self._take(best.share, best.claim)
            best.loop.call_soon_threadsafe(_wake, best.future)

    async def acquire(self, share: Share | None) -> Claim:
        """Wait for a slot for ``share``; returns the claim the slot was counted with."""
        claim = NO_CLAIM if share is None else share.claim()
        with self._lock:
            if self._eligible(share, claim):
                self._take(share, claim)
                return claim
            loop = asyncio.get_running_loop()
            waiter = _Waiter(share, claim, loop, loop.create_future())
            self.waiting.append(waiter)
        try:
            await waiter.future
        except asyncio.CancelledError:
            with self._lock:
                if waiter.granted:
                    self._give_back(share, claim)
                else:
                    self.waiting.remove(waiter)
            raise
        return claim

    def release(self, share: Share | None, claim: Claim) -> None:
        """Give a slot back (from any thread)."""
        with self._lock:
            self._give_back(share, claim)


def _wake(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


class _Slot(Executor):
    """Submits one call to the pool's threads; its slot is given back when the call is done
    (or cancelled before it started), whatever happens to the task awaiting it."""

    def __init__(self, pool: FairPool, share: Share | None, claim: Claim):
        self.pool = pool
        self.share = share
        self.claim = claim

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future = self.pool.executor.submit(fn, *args, **kwargs)
        future.add_done_callback(lambda _: self.pool.release(self.share, self.claim))
        return future


def _new_pool() -> FairPool:
    s = wscommands_settings
    return FairPool(
        s.WORKER_THREADS,
        s.WORKER_THREADS_PER_CONNECTION,
        s.ANONYMOUS_WORKER_SHARE,
        s.ANONYMOUS_WORKER_THREADS_PER_IP,
        s.WORKER_THREADS_PER_USER,
    )


#: The worker pool, from the ``WORKER_THREADS*`` settings; dropped on reset (its threads end
#: when idle).
POOL: Part[FairPool] = Part(
    "worker pool",
    _new_pool,
    per_loop=False,
    release=lambda pool: pool.executor.shutdown(wait=False),
)


def get_pool() -> FairPool:
    """The worker pool, created on first use."""
    return RUNTIME.get(POOL)


async def run_sync(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run a sync callable in the worker pool, within its connection's share; await it.

    Database connections are handled as in Channels: closed if stale before and after.
    The caller's context variables are visible in the thread.
    """
    call = functools.partial(func, *args, **kwargs) if args or kwargs else func
    pool = get_pool()
    share = current_share.get()
    queued_at = metrics.worker_queued()
    claim = await pool.acquire(share)

    def timed() -> T:
        metrics.worker_started(queued_at)
        return call()

    slot = _Slot(pool, share, claim)
    return await DatabaseSyncToAsync(timed, thread_sensitive=False, executor=slot)()


def is_async(func: Callable[..., Any]) -> bool:
    """Whether ``func`` must be awaited: the one test wscommands uses to tell sync from async.

    asgiref's ``iscoroutinefunction``: ``inspect``'s, plus functions marked with
    ``markcoroutinefunction`` (``asyncio.iscoroutinefunction`` is deprecated).
    """
    return iscoroutinefunction(func)


async def call(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Call a sync or async function: async on the loop, sync in the worker pool.

    A sync function that returns an awaitable (e.g. a ``functools.partial`` of an async
    function) has it awaited.
    """
    if is_async(func):
        return await func(*args, **kwargs)
    result = await run_sync(func, *args, **kwargs)
    if inspect.isawaitable(result):
        return await result
    return result


async def send_signal(signal: Signal, sender: Any, **kwargs: Any) -> list[tuple[Any, Any]]:
    """Send a Django signal from async code without blocking the event loop.

    Sync receivers run in the worker pool; returns ``[(receiver, response), ...]`` like
    ``Signal.send``.
    """
    return await run_sync(signal.send, sender, **kwargs)


async def sweep_old_connections() -> None:
    """Close stale database connections of asgiref's thread-sensitive thread, once a second.

    Channels does this before every message a consumer handles: a round trip to that thread
    per frame, which costs more than the rest of a request and lengthens the latency tail.
    wscommands' own sync calls close theirs around each call (``run_sync``), so frames only
    need a periodic sweep, for code that uses that thread directly (``sync_to_async`` in an
    async command). Connect and disconnect keep Channels' check on every message.
    """
    global _next_sweep
    now = time.monotonic()
    if now >= _next_sweep:
        _next_sweep = now + SWEEP_INTERVAL
        await aclose_old_connections()
