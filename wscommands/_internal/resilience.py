"""Channel-layer calls that survive Redis being down or stalled.

channels_redis raises (connection refused) while Redis is down and hangs (until its socket
timeout, 30 s in the example project) while Redis is paused. On the stock stack either one
closes every client with 1011 and fails new handshakes with HTTP 500. wscommands instead:

- bounds every channel-layer call by ``WSCOMMANDS["CHANNEL_LAYER_TIMEOUT"]``;
- on the hub's own calls (joining the process's groups at a handshake, ``join``) logs the
  failure and lets the hub re-assert its memberships as soon as the layer answers again, so
  handshakes and commands that do not need Redis keep working;
- turns a failed send (broadcast, group or subset message) into the ``unavailable`` error;
- stops its background tasks within a bound (:func:`cancel_and_wait`), even when a library
  swallowed a cancellation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable
from typing import Any

from channels.exceptions import ChannelFull

from ..conf import wscommands_settings
from ..wire.exceptions import Unavailable

logger = logging.getLogger("wscommands.layer")


async def best_effort(awaitable: Awaitable[Any], what: str) -> bool:
    """Await a channel-layer call within the timeout; False (logged) if it failed."""
    try:
        async with asyncio.timeout(wscommands_settings.CHANNEL_LAYER_TIMEOUT):
            await awaitable
    except Exception as exc:
        logger.warning("channel layer: %s failed (%s); will retry", what, type(exc).__name__)
        return False
    return True


async def or_unavailable(awaitable: Awaitable[Any], what: str) -> None:
    """Await a channel-layer send within the timeout; raise :class:`Unavailable` if it failed.

    ``ChannelFull`` passes through: it means a slow receiver, not an unreachable layer.
    """
    try:
        async with asyncio.timeout(wscommands_settings.CHANNEL_LAYER_TIMEOUT):
            await awaitable
    except ChannelFull:
        raise
    except Exception as exc:
        logger.warning("channel layer: %s failed (%s)", what, type(exc).__name__)
        raise Unavailable(f"{what} failed: the message layer cannot be reached") from exc


#: Seconds between two cancellations of a task that has not ended yet.
RECANCEL_INTERVAL = 0.05


async def cancel_and_wait(tasks: Iterable[asyncio.Task], timeout: float) -> None:
    """Cancel ``tasks`` and wait for them to end, at most ``timeout`` seconds.

    A task can survive one cancellation (code below its loop turned it into an error the loop
    handles and goes on; seen with the presence loop, the culprit not pinned down): such a
    task is cancelled again until it ends. One still running after ``timeout`` is logged and
    left behind, never waited for.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        remaining = deadline - loop.time()
        if remaining <= 0:
            names = ", ".join(sorted(task.get_name() for task in pending))
            logger.warning("background tasks did not stop within %.1f s: %s", timeout, names)
            return
        done, pending = await asyncio.wait(pending, timeout=min(RECANCEL_INTERVAL, remaining))
        for task in done:  # their errors were logged by the tasks themselves
            if not task.cancelled():
                task.exception()
