"""Redis backend: global state and presence shared by every process of a deployment.

The keys it uses and the Lua scripts that change them, each atomic in Redis, are in
:mod:`.redis_scripts`. Scripts touch keys they compute, so they need a single Redis (or
Sentinel), not Redis Cluster.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from django.core.exceptions import ImproperlyConfigured

try:
    from redis import exceptions as redis_errors
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
except ImportError:  # optional (the "redis" extra): RedisBackend() says what to install
    pass

from .._internal.compat import close_with_loop
from ..wire.jsoncodec import decode
from . import REDIS_MISSING, redis_installed, redis_notify
from . import redis_scripts as scripts
from .base import (
    CLAIMED,
    DONE,
    PENDING,
    Backend,
    BackendUnavailable,
    HistoryBounds,
    HistoryRead,
    check_amount,
    encode_mapping,
)
from .memory import new_epoch
from .redis_client import LoopClient

T = TypeVar("T")

#: Connection options applied under ``REDIS_OPTIONS``: fail in seconds, not minutes, and
#: retry a command once on a broken connection (a stale pooled socket after a Redis
#: restart) but never after a timeout, when Redis may have run it already.
DEFAULT_OPTIONS: dict[str, Any] = {
    "socket_connect_timeout": 2.0,
    "socket_timeout": 2.0,
    "max_connections": 1000,
}

#: Seconds a process's entries outlive its heartbeat, for a live process to reap them (and
#: announce their leave). A reaper wakes within its own PRESENCE_TTL / 3, which can be far
#: longer than the dead process's TTL: entries gone by then are ghosts on open pages.
KEEP_UNREAPED = 24 * 3600.0


class RedisBackend(Backend):
    """Global state and presence in Redis (``WSCOMMANDS["BACKEND"] = "redis"``).

    ``host`` is what channels-redis takes as one entry of ``hosts``: ``{"address": url}``
    for ``redis://``, ``rediss://`` or ``unix://``, or ``{"sentinels": [(host, port)],
    "master_name": name}`` for Sentinel, plus redis-py connection options. Each event
    loop gets its own client (redis.asyncio connections belong to the loop that made them).
    Redis unreachable or too slow raises :class:`BackendUnavailable` within the socket
    timeouts; the next call connects afresh, so service resumes by itself.
    """

    def __init__(self, host: Mapping[str, Any], prefix: str = "wscommands"):
        if not redis_installed():
            raise ImproperlyConfigured(REDIS_MISSING)
        self.host = {**DEFAULT_OPTIONS, **host}
        self.host.setdefault(
            "retry", Retry(NoBackoff(), 1, supported_errors=(redis_errors.ConnectionError,))
        )
        self.state_key = f"{prefix}:state"
        self.processes_key = f"{prefix}:presence"
        self.process_prefix = f"{prefix}:presence:"
        self.prefix = prefix
        self.stats_prefix = f"{prefix}:stats:"
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopClient] = (
            weakref.WeakKeyDictionary()
        )

    @classmethod
    def from_settings(cls, settings: Any) -> RedisBackend:
        url = settings.REDIS_URL
        host = dict(url) if isinstance(url, Mapping) else {"address": url}
        return cls({**host, **settings.REDIS_OPTIONS}, prefix=settings.PREFIX)

    def _client(self) -> LoopClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = LoopClient(self.host, self.prefix)
            close_with_loop(loop, client.close)
        return client

    async def _call(self, op: Callable[[LoopClient], Awaitable[T]]) -> T:
        try:
            return await op(self._client())
        except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
            raise BackendUnavailable(f"Redis is unavailable: {exc}") from exc

    # Global state -------------------------------------------------------------------------

    async def get_global_state(self, key: str | None = None) -> Any:
        if key is None:
            raw = await self._call(lambda c: c.redis.hgetall(self.state_key))
            return {(k.decode() if isinstance(k, bytes) else k): decode(v) for k, v in raw.items()}
        value = await self._call(lambda c: c.redis.hget(self.state_key, key))
        return None if value is None else decode(value)

    async def update_global_state(self, mapping: Mapping[str, Any]) -> None:
        encoded = encode_mapping(mapping)
        if encoded:  # one HSET: all keys or none
            await self._call(
                lambda c: c.redis.hset(self.state_key, mapping=dict[Any, Any](encoded))
            )

    async def increment_global_state(self, key: str, amount: int | float = 1) -> int | float:
        check_amount(amount)
        kind = "float" if isinstance(amount, float) else "int"
        try:
            result = await self._call(
                lambda c: c.increment(keys=[self.state_key], args=[key, repr(amount), kind])
            )
        except redis_errors.ResponseError as exc:
            if "WSC_NOT_NUMBER" in str(exc):
                raise TypeError(f"global state {key!r} does not hold a number") from None
            raise ValueError(f"cannot add {amount!r} to global state {key!r}: {exc}") from None
        tag, text = (part.decode() for part in result)
        return int(text) if tag == "int" else float(text)

    # Presence -----------------------------------------------------------------------------

    async def presence_write(
        self,
        process: str,
        ttl: float,
        entries: Mapping[str, str] | None = None,
        remove: Iterable[str] = (),
        replace: bool = False,
    ) -> int:
        removed = list(remove)
        args: list[Any] = [
            process,
            scripts.ms(ttl),
            scripts.ms(KEEP_UNREAPED),
            int(replace),
            len(removed),
        ]
        args += removed
        for connection_id, text in (entries or {}).items():
            args += [connection_id, text]
        keys = [self.processes_key, self.process_prefix + process]
        return await self._call(lambda c: c.presence_write(keys=keys, args=args))

    async def presence_clear(self, process: str) -> None:
        async def clear(c: LoopClient) -> None:
            async with c.redis.pipeline(transaction=True) as pipe:
                pipe.delete(self.process_prefix + process)
                pipe.zrem(self.processes_key, process)
                pipe.delete(self.stats_prefix + process)
                await pipe.execute()

        await self._call(clear)

    async def presence_entries(self) -> list[str]:
        keys = [self.processes_key]
        raw = await self._call(lambda c: c.presence_read(keys=keys, args=[self.process_prefix]))
        return [value.decode() for value in raw]

    async def presence_reap(self) -> tuple[dict[str, list[str]], float | None]:
        keys = [self.processes_key]
        wait, dead = await self._call(
            lambda c: c.presence_reap(keys=keys, args=[self.process_prefix])
        )
        seconds = float(wait)
        entries = {p.decode(): [v.decode() for v in values] for p, values in dead}
        return entries, (None if seconds < 0 else seconds)

    # Stream history (keys and scripts: redis_scripts.py) ----------------------------------

    async def history_append(
        self, stream: str, text: str, bounds: HistoryBounds
    ) -> tuple[str, int]:
        keys = scripts.history_keys(self.prefix, stream)
        args: list[Any] = [
            new_epoch(),
            scripts.ms(bounds.meta_ttl),
            text,
            bounds.size,
            scripts.ms(bounds.ttl),
        ]
        epoch, offset = await self._call(lambda c: c.history_append(keys=keys, args=args))
        return scripts.text(epoch), int(offset)

    async def history_positions(
        self, streams: Iterable[str], bounds: HistoryBounds
    ) -> dict[str, tuple[str, int]]:
        names = list(streams)

        async def read(c: LoopClient) -> list[Any]:
            # One round trip; each script touches one stream's slot (Cluster-friendly).
            async with c.redis.pipeline(transaction=False) as pipe:
                for stream in names:
                    keys = scripts.history_keys(self.prefix, stream)
                    args: list[Any] = [new_epoch(), scripts.ms(bounds.meta_ttl)]
                    await c.history_position(keys=keys, args=args, client=pipe)
                return await pipe.execute()

        results = await self._call(read) if names else []
        return {s: (scripts.text(e), int(o)) for s, (e, o) in zip(names, results, strict=True)}

    async def history_read(
        self, stream: str, epoch: str, after: int, bounds: HistoryBounds
    ) -> HistoryRead:
        keys = scripts.history_keys(self.prefix, stream)
        args: list[Any] = [
            new_epoch(),
            scripts.ms(bounds.meta_ttl),
            epoch,
            after,
            scripts.ms(bounds.ttl),
        ]
        raw = await self._call(lambda c: c.history_read(keys=keys, args=args))
        read = HistoryRead(scripts.text(raw[0]), int(raw[1]))
        if read.epoch != epoch:
            return read
        read.entries = [
            (int(scripts.text(raw[i]).partition("-")[0]), scripts.text(raw[i + 1]))
            for i in range(2, len(raw), 2)
        ]
        first = read.entries[0][0] if read.entries else read.offset + 1
        read.complete = after <= read.offset and first == after + 1
        return read

    # Idempotency records ------------------------------------------------------------------

    async def idempotency_claim(self, owner: str, key: str, lease: float) -> tuple[str, str | None]:
        keys = scripts.record_keys(self.prefix, owner)
        found = await self._call(lambda c: c.claim(keys=keys, args=[key, scripts.ms(lease)]))
        if found is None:
            return CLAIMED, None
        found = scripts.text(found)
        if found == "P":
            return PENDING, None
        return DONE, (found[1:] if found.startswith("D") else None)

    async def idempotency_renew(self, owner: str, key: str, lease: float) -> None:
        keys = scripts.record_keys(self.prefix, owner)
        await self._call(lambda c: c.renew(keys=keys, args=[key, scripts.ms(lease)]))

    async def idempotency_finish(
        self, owner: str, key: str, reply: str | None, ttl: float, max_keys: int
    ) -> None:
        keys = scripts.record_keys(self.prefix, owner)
        record = "L" if reply is None else "D" + reply
        note = [f"{self.prefix}:idempotency", redis_notify.message(owner, key)]
        args: list[Any] = [key, record, scripts.ms(ttl), max_keys, *note]
        await self._call(lambda c: c.finish(keys=keys, args=args))

    async def idempotency_release(self, owner: str, key: str) -> None:
        keys = scripts.record_keys(self.prefix, owner)
        args = [key, f"{self.prefix}:idempotency", redis_notify.message(owner, key)]
        await self._call(lambda c: c.release(keys=keys, args=args))

    def idempotency_waiter(self, owner: str, key: str) -> AbstractAsyncContextManager[Any]:
        return self._client().notifications.watch(owner, key)

    async def stats_write(self, process: str, ttl: float, text: str) -> None:
        key = self.stats_prefix + process
        await self._call(lambda c: c.redis.set(key, text, px=max(1, int(ttl * 1000))))

    async def stats_read(self) -> list[str]:
        keys = [self.processes_key]
        raw = await self._call(lambda c: c.stats_read(keys=keys, args=[self.stats_prefix]))
        return [value.decode() for value in raw]

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        client = self._clients.pop(loop, None)
        if client is not None:
            await client.close()
