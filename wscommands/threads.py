"""Running sync code (ORM calls, signals, sync commands) off the event loop.

asgiref's default (``thread_sensitive=True``) runs every sync call of a process on one
thread, so one slow ORM call would hold up every connection. wscommands runs them in a
pool of its own (``WSCOMMANDS["WORKER_THREADS"]``) and, like Channels'
``database_sync_to_async``, closes stale database connections around each call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from channels.db import DatabaseSyncToAsync
from django.dispatch import Signal

from .conf import wscommands_settings

T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None


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
    return await DatabaseSyncToAsync(call, thread_sensitive=False, executor=get_executor())()


async def send_signal(signal: Signal, sender: Any, **kwargs: Any) -> list[tuple[Any, Any]]:
    """Send a Django signal from async code without blocking the event loop.

    Sync receivers run in the worker pool; returns ``[(receiver, response), ...]`` like
    ``Signal.send``.
    """
    return await run_sync(signal.send, sender, **kwargs)
