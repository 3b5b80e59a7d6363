"""asyncio's and Channels' internals outside the servers: asyncio's placeholder signal
handler, a hook on a loop's close, channels_redis' pool factory and its Pub/Sub layer's
connections, Channels' channel names.

Part of the compat fence (see the package).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import types
from collections.abc import Awaitable, Callable
from typing import Any

from .uses import warn_once


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


def layer_receivers(layer: Any) -> tuple[Any, ...]:
    """What a channels_redis Pub/Sub layer receives through now, for the running loop: per
    shard, the socket reader of its subscription connection (None while it is down). Empty
    for any other layer.

    A new reader means redis-py reconnected (and re-subscribed, in one SUBSCRIBE): whatever
    was published between the old connection's end and that SUBSCRIBE never reached this
    process, and nothing else tells (channels_redis logs the receive error and retries a
    second later; Redis Pub/Sub keeps nothing). The readers are kept by the caller, so an
    old one is never freed and its identity never reused.
    """
    pubsub = sys.modules.get("channels_redis.pubsub")  # loaded if the layer is one of its
    if pubsub is None or not isinstance(layer, pubsub.RedisPubSubChannelLayer):
        return ()
    loop_layer: Any = getattr(layer, "_get_layer", None)  # the layer of the running loop
    shards = getattr(loop_layer(), "_shards", None) if callable(loop_layer) else None
    if shards is None:  # another channels_redis: only the canary notices a loss
        warn_once("channels_redis.pubsub_connection", "channels_redis' layer has changed")
        return ()
    return tuple(shard_receiver(shard) for shard in shards)


def shard_receiver(shard: Any) -> Any:
    """The socket reader of one channels_redis shard's subscription connection (its redis-py
    PubSub's), or None: not connected (redis-py clears it on disconnect), or not used yet."""
    connection = getattr(getattr(shard, "_pubsub", None), "connection", None)
    return getattr(connection, "_reader", None)
