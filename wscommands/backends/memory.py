"""In-process backend: the default, for one server process and for tests."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from ..protocol import decode, encode
from .base import Backend, check_amount, encode_mapping


class MemoryBackend(Backend):
    """Global state and presence in dicts of this process; other processes do not see them.

    Values are kept as JSON text so they behave exactly as with Redis (copies, JSON only).
    Every operation runs without an ``await`` in between, which makes it atomic on one
    event loop.
    """

    def __init__(self) -> None:
        self._state: dict[str, str] = {}
        self._presence: dict[str, dict[str, str]] = {}
        self._stats: dict[str, tuple[float, str]] = {}  # process -> (expiry, figures)

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

    async def delete_global_state(self, *keys: str) -> None:
        for key in keys:
            self._state.pop(key, None)

    async def presence_write(
        self,
        process: str,
        ttl: float,
        entries: Mapping[str, str] | None = None,
        remove: Iterable[str] = (),
        replace: bool = False,
    ) -> int:
        # One process: it is alive while it runs, so the heartbeat (ttl) needs no record.
        current = self._presence.setdefault(process, {})
        if replace:
            current.clear()
        for connection_id in remove:
            current.pop(connection_id, None)
        current.update(entries or {})
        return len(current)

    async def presence_clear(self, process: str) -> None:
        self._presence.pop(process, None)
        self._stats.pop(process, None)

    async def presence_entries(self) -> list[str]:
        return [text for entries in self._presence.values() for text in entries.values()]

    async def presence_reap(self) -> tuple[dict[str, list[str]], float | None]:
        return {}, None  # one process: nobody else can die

    async def stats_write(self, process: str, ttl: float, text: str) -> None:
        self._stats[process] = (time.monotonic() + ttl, text)

    async def stats_read(self) -> list[str]:
        now = time.monotonic()
        return [
            text
            for process, (expiry, text) in self._stats.items()
            if expiry > now and process in self._presence
        ]
