"""One Redis client per event loop, with the scripts the Redis backend runs registered on it.

redis.asyncio connections belong to the loop that made them: the backend keeps one of these
per loop.
"""

from __future__ import annotations

import contextlib
from typing import Any

from .._internal.compat import redis_pool
from . import redis_notify
from . import redis_scripts as scripts

with contextlib.suppress(ImportError):  # optional ("redis" extra): RedisBackend() says so
    from redis.asyncio import Redis


class LoopClient:
    """One Redis client and its scripts, bound to one event loop."""

    def __init__(self, host: dict[str, Any], prefix: str):
        self.redis = Redis(connection_pool=redis_pool(host))
        self.notifications = redis_notify.Notifications(self.redis, f"{prefix}:idempotency")
        self.increment = self.redis.register_script(scripts.INCREMENT)
        self.presence_write = self.redis.register_script(scripts.PRESENCE_WRITE)
        self.presence_read = self.redis.register_script(scripts.PRESENCE_READ)
        self.presence_reap = self.redis.register_script(scripts.PRESENCE_REAP)
        self.history_append = self.redis.register_script(scripts.HISTORY_APPEND)
        self.history_position = self.redis.register_script(scripts.HISTORY_POSITION)
        self.history_read = self.redis.register_script(scripts.HISTORY_READ)
        self.claim = self.redis.register_script(scripts.IDEMPOTENCY_CLAIM)
        self.renew = self.redis.register_script(scripts.IDEMPOTENCY_RENEW)
        self.finish = self.redis.register_script(scripts.IDEMPOTENCY_FINISH)
        self.release = self.redis.register_script(scripts.IDEMPOTENCY_RELEASE)
        self.stats_read = self.redis.register_script(scripts.STATS_READ)

    async def close(self) -> None:
        """Stop the subscription and close the client's connections."""
        await self.notifications.close()
        await self.redis.aclose(close_connection_pool=True)
