"""Wake-ups of waiting idempotent retries over Redis Pub/Sub, one subscription per event loop.

The finish and release scripts publish ``<owner>\\n<key>`` on ``<prefix>:idempotency``; each
process subscribes once, when its first retry has to wait, and wakes the local waiters of that
key. A retry registers and waits for the subscription to be confirmed *before* it looks at
the claim again, so a finish published after that look is never missed. If the subscription
breaks (Redis restarted) every waiter is woken to look again, and the next one subscribes
afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from asyncio import Event
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

with contextlib.suppress(ImportError):  # optional ("redis" extra): RedisBackend() says so
    from redis import exceptions as redis_errors

if TYPE_CHECKING:
    from redis.asyncio import Redis

from .base import BackendUnavailable
from .redis_scripts import text
from .waiters import KeyWaiters

logger = logging.getLogger("wscommands.layer")

#: Seconds one read of the subscription waits before it reads again (local, no Redis call).
READ_TIMEOUT = 1.0


def message(owner: str, key: str) -> str:
    """What the scripts publish for (owner, key)."""
    return f"{owner}\n{key}"


class Notifications:
    """One event loop's subscription to the idempotency channel and its local waiters."""

    def __init__(self, redis: Redis, channel: str):
        self.redis = redis
        self.channel = channel
        self.waiters = KeyWaiters()
        self._task: asyncio.Task | None = None
        self._subscribed: asyncio.Future[None] | None = None

    def watch(self, owner: str, key: str) -> AbstractAsyncContextManager[Event]:
        """See :meth:`~.base.Backend.idempotency_waiter`."""
        return self.waiters.watch(owner, key, self._ready)

    async def _ready(self) -> None:
        if self._task is None or self._task.done():
            loop = asyncio.get_running_loop()
            self._subscribed = loop.create_future()
            self._task = loop.create_task(
                self._listen(self._subscribed), name="wscommands-idempotency-notify"
            )
        assert self._subscribed is not None
        try:
            await asyncio.shield(self._subscribed)
        except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
            raise BackendUnavailable(f"Redis is unavailable: {exc}") from exc

    async def _listen(self, subscribed: asyncio.Future[None]) -> None:
        pubsub = self.redis.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            while True:
                got = await pubsub.get_message(timeout=READ_TIMEOUT)
                if got is None:
                    continue
                if got["type"] == "subscribe" and not subscribed.done():
                    subscribed.set_result(None)
                elif got["type"] == "message":
                    owner, _, key = text(got["data"]).partition("\n")
                    self.waiters.wake(owner, key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Redis went away: waiters look again (and fail or resubscribe)
            logger.warning("idempotency notifications lost (%s)", type(exc).__name__)
            if not subscribed.done():
                subscribed.set_exception(exc)
                subscribed.exception()  # retrieved: a waiter may have gone already
        finally:
            self.waiters.wake_all()
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def close(self) -> None:
        """Stop listening (the loop's client closes)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
