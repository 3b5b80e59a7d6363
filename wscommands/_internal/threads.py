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

import functools
import inspect
import time
from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import iscoroutinefunction
from channels.db import DatabaseSyncToAsync, aclose_old_connections
from django.dispatch import Signal

from ..conf import wscommands_settings
from ..observability import metrics
from .fairpool import FairPool, Slot, current_share
from .runtime import RUNTIME, Part

T = TypeVar("T")

#: Seconds between two sweeps of stale database connections on the frame path.
SWEEP_INTERVAL = 1.0
_next_sweep = 0.0


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
    release=lambda pool: pool.executor.shutdown(),
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

    slot = Slot(pool, share, claim)
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


def sweep_due() -> bool:
    """Whether :func:`sweep_old_connections` would sweep now: a frame checks this first, so
    the once-a-second sweep costs the other frames no coroutine."""
    return time.monotonic() >= _next_sweep


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
