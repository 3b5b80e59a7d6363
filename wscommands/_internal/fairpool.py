"""A thread pool shared out fairly: per connection, per client and between anonymous
connections and users (see :mod:`.threads` for what runs in it)."""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


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
        self.executor = DaemonThreads(size, "wscommands")
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


class DaemonThreads:
    """At most ``size`` threads that run the calls submitted, started as calls come.

    ThreadPoolExecutor's work with daemon threads: Python joins a ThreadPoolExecutor's threads
    before it exits, so a sync call still running (a slow query) kept a server that was told to
    stop (its graceful shutdown over, or a second signal) alive until the call returned.
    """

    def __init__(self, size: int, name: str):
        self.size = size
        self.name = name
        self.threads = 0
        self.closed = False
        self._calls: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # the caller's to handle, as ThreadPoolExecutor does
                future.set_exception(exc)
            else:
                future.set_result(result)

        with self._lock:
            if self.closed:
                raise RuntimeError("cannot run a call: the worker threads were shut down")
            self._calls.put(run)
            # An idle thread takes it; else one more thread, up to size.
            if not self._idle.acquire(blocking=False) and self.threads < self.size:
                self.threads += 1
                name = f"{self.name}_{self.threads}"
                threading.Thread(target=self._work, name=name, daemon=True).start()
        return future

    def _work(self) -> None:
        while (run := self._calls.get()) is not None:
            run()
            del run  # nothing of the call is kept while the thread waits
            self._idle.release()

    def shutdown(self) -> None:
        """Take no more calls; each thread ends once the calls already taken have run."""
        with self._lock:
            self.closed = True
            for _ in range(self.threads):
                self._calls.put(None)


class Slot(Executor):
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
