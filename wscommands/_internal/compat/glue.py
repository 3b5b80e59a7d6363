"""asyncio's and Channels' internals outside the servers: asyncio's placeholder signal
handler, a hook on a loop's close, channels_redis' pool factory, Channels' channel names.

Part of the compat fence (see the package).
"""

from __future__ import annotations

import asyncio
import contextlib
import types
from collections.abc import Awaitable, Callable
from typing import Any


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
