"""Running sync code (ORM calls, signals, sync commands) off the event loop.

asgiref's default (``thread_sensitive=True``) runs every sync call of a process on one
thread, so one slow ORM call would hold up every connection. wscommands runs them in a
pool of its own (``WSCOMMANDS["WORKER_THREADS"]``) and, like Channels'
``database_sync_to_async``, closes stale database connections around each call.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from channels.db import DatabaseSyncToAsync, aclose_old_connections
from django.dispatch import Signal

from . import metrics
from .conf import wscommands_settings

T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None
#: Seconds between two sweeps of stale database connections on the frame path.
SWEEP_INTERVAL = 1.0
_next_sweep = 0.0


def get_executor() -> ThreadPoolExecutor:
    """The worker pool, created on first use with ``WORKER_THREADS`` threads."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(
            max_workers=wscommands_settings.WORKER_THREADS, thread_name_prefix="wscommands"
        )
    return _executor


async def run_sync(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run a sync callable in the worker pool and await its result.

    Database connections are handled as in Channels: closed if stale before and after.
    The caller's context variables are visible in the thread.
    """
    call = functools.partial(func, *args, **kwargs) if args or kwargs else func
    queued_at = metrics.worker_queued()

    def timed() -> T:
        metrics.worker_started(queued_at)
        return call()

    return await DatabaseSyncToAsync(timed, thread_sensitive=False, executor=get_executor())()


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
