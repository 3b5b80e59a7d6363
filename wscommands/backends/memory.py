"""In-process backend: the default, for one server process and for tests."""

from __future__ import annotations

import secrets
import time
from asyncio import Event
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from ..wire.jsoncodec import decode, encode
from .base import (
    CLAIMED,
    DONE,
    PENDING,
    Backend,
    HistoryBounds,
    HistoryRead,
    check_amount,
    encode_mapping,
)
from .waiters import KeyWaiters


def new_epoch() -> str:
    """A fresh epoch: random, so a stream that lost its history never reuses one."""
    return secrets.token_urlsafe(6)


# An idempotency record: (expiry, CLAIMED/PENDING/DONE state, reply text).
_Record = tuple[float, str, str | None]


@dataclass(slots=True)
class _Stream:
    epoch: str
    offset: int = 0
    expires: float = 0.0
    # (offset, monotonic time, text), oldest first, at most bounds.size
    entries: deque[tuple[int, float, str]] = field(default_factory=deque)


class MemoryBackend(Backend):
    """Global state and presence in dicts of this process; other processes do not see them.

    Values are kept as JSON text so they behave exactly as with Redis (copies, JSON only).
    Every operation runs without an ``await`` in between, which makes it atomic on one
    event loop.
    """

    def __init__(self) -> None:
        self._state: dict[str, str] = {}
        self._presence: dict[str, dict[str, str]] = {}
        self._alive: dict[str, float] = {}  # process -> monotonic time its heartbeat expires
        self._streams: dict[str, _Stream] = {}
        # owner -> key -> (expiry, state, reply); oldest first
        self._records: dict[str, OrderedDict[str, _Record]] = {}
        self._stats: dict[str, tuple[float, str]] = {}  # process -> (expiry, figures)
        self._waiters = KeyWaiters()

    async def get_global_state(self, key: str | None = None) -> Any:
        if key is None:
            return {k: decode(v) for k, v in self._state.items()}
        raw = self._state.get(key)
        return None if raw is None else decode(raw)

    async def update_global_state(self, mapping: Mapping[str, Any]) -> None:
        encoded = encode_mapping(mapping)  # encode all first: all keys or none
        self._state.update(encoded)

    async def increment_global_state(self, key: str, amount: int | float = 1) -> int | float:
        check_amount(amount)
        raw = self._state.get(key)
        current = 0 if raw is None else decode(raw)
        if isinstance(current, bool) or not isinstance(current, (int, float)):
            raise TypeError(f"global state {key!r} holds {type(current).__name__}, not a number")
        value = current + amount
        self._state[key] = encode(value)
        return value

    async def presence_write(
        self,
        process: str,
        ttl: float,
        entries: Mapping[str, str] | None = None,
        remove: Iterable[str] = (),
        replace: bool = False,
    ) -> int:
        # Heartbeats are kept as in Redis: a stopped hub's held leaves (PRESENCE_GRACE) expire
        # and are reaped by the process's next hub.
        self._alive[process] = time.monotonic() + ttl
        current = self._presence.setdefault(process, {})
        if replace:
            current.clear()
        for connection_id in remove:
            current.pop(connection_id, None)
        current.update(entries or {})
        return len(current)

    async def presence_clear(self, process: str) -> None:
        self._presence.pop(process, None)
        self._alive.pop(process, None)
        self._stats.pop(process, None)

    async def presence_entries(self) -> list[str]:
        now = time.monotonic()
        return [
            text
            for process, entries in self._presence.items()
            if self._alive.get(process, now) >= now
            for text in entries.values()
        ]

    async def presence_reap(self) -> tuple[dict[str, list[str]], float | None]:
        now = time.monotonic()
        dead = [p for p, expiry in self._alive.items() if expiry < now]
        for process in dead:
            del self._alive[process]
        taken = {p: list(self._presence.pop(p, {}).values()) for p in dead}
        expiries = self._alive.values()
        return taken, (min(expiries) - now if expiries else None)

    # Stream history ---------------------------------------------------------------------------

    def _stream(self, stream: str, bounds: HistoryBounds, now: float) -> _Stream:
        current = self._streams.get(stream)
        if current is None or current.expires <= now:
            current = self._streams[stream] = _Stream(new_epoch())
        current.expires = now + bounds.meta_ttl
        return current

    async def history_append(
        self, stream: str, text: str, bounds: HistoryBounds
    ) -> tuple[str, int]:
        now = time.monotonic()
        current = self._stream(stream, bounds, now)
        current.offset += 1
        current.entries.append((current.offset, now, text))
        while len(current.entries) > bounds.size:
            current.entries.popleft()
        return current.epoch, current.offset

    async def history_positions(
        self, streams: Iterable[str], bounds: HistoryBounds
    ) -> dict[str, tuple[str, int]]:
        now = time.monotonic()
        out = {}
        for stream in streams:
            current = self._stream(stream, bounds, now)
            out[stream] = (current.epoch, current.offset)
        return out

    async def history_read(
        self, stream: str, epoch: str, after: int, bounds: HistoryBounds
    ) -> HistoryRead:
        now = time.monotonic()
        current = self._stream(stream, bounds, now)
        read = HistoryRead(current.epoch, current.offset)
        if current.epoch != epoch or after > current.offset:
            return read
        oldest = now - bounds.ttl
        read.entries = [(o, text) for o, t, text in current.entries if o > after and t > oldest]
        first = read.entries[0][0] if read.entries else current.offset + 1
        read.complete = first == after + 1
        return read

    # Idempotency records --------------------------------------------------------------------

    def _records_of(self, owner: str, now: float) -> OrderedDict[str, _Record]:
        records = self._records.setdefault(owner, OrderedDict())
        for key in [k for k, (expiry, _, _) in records.items() if expiry <= now]:
            del records[key]
        return records

    async def idempotency_claim(self, owner: str, key: str, lease: float) -> tuple[str, str | None]:
        now = time.monotonic()
        records = self._records_of(owner, now)
        found = records.get(key)
        if found is not None:
            return found[1], found[2]
        records[key] = (now + lease, PENDING, None)
        return CLAIMED, None

    async def idempotency_renew(self, owner: str, key: str, lease: float) -> None:
        records = self._records_of(owner, time.monotonic())
        if key in records and records[key][1] == PENDING:
            records[key] = (time.monotonic() + lease, PENDING, None)

    async def idempotency_finish(
        self, owner: str, key: str, reply: str | None, ttl: float, max_keys: int
    ) -> None:
        records = self._records_of(owner, time.monotonic())
        records.pop(key, None)
        records[key] = (time.monotonic() + ttl, DONE, reply)
        # The oldest finished records go first; a running claim is never dropped (its retry
        # would run the request again).
        done = [k for k, (_, state, _) in records.items() if state == DONE]
        for old in done[: max(0, len(done) - max_keys)]:
            del records[old]
        self._waiters.wake(owner, key)

    async def idempotency_release(self, owner: str, key: str) -> None:
        records = self._records.get(owner)
        if records is not None and key in records and records[key][1] == PENDING:
            del records[key]
        self._waiters.wake(owner, key)

    def idempotency_waiter(self, owner: str, key: str) -> AbstractAsyncContextManager[Event]:
        return self._waiters.watch(owner, key)

    async def stats_write(self, process: str, ttl: float, text: str) -> None:
        self._stats[process] = (time.monotonic() + ttl, text)

    async def stats_read(self) -> list[str]:
        now = time.monotonic()
        return [
            text
            for process, (expiry, text) in self._stats.items()
            if expiry > now and process in self._presence
        ]
