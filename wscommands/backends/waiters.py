"""Local waiters of idempotency keys: retries of a running request wait to be woken.

A backend sets a key's events when its claim ends (finished or released): the memory backend
at once, the Redis backend when its Pub/Sub listener hears of it from any process.
"""

from __future__ import annotations

from asyncio import Event
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager


class KeyWaiters:
    """The events of this process's waiting retries, per (owner, key)."""

    def __init__(self) -> None:
        self._events: dict[tuple[str, str], set[Event]] = {}

    @asynccontextmanager
    async def watch(
        self, owner: str, key: str, ready: Callable[[], Awaitable[None]] | None = None
    ) -> AsyncIterator[Event]:
        """An event set by :meth:`wake` (or :meth:`wake_all`) while the block runs; ``ready``
        is awaited after the event is registered (e.g. until a subscription is confirmed)."""
        event = Event()
        waiting = self._events.setdefault((owner, key), set())
        waiting.add(event)
        try:
            if ready is not None:
                await ready()
            yield event
        finally:
            waiting.discard(event)
            if not waiting:
                self._events.pop((owner, key), None)

    def wake(self, owner: str, key: str) -> None:
        """(owner, key)'s claim may have ended: its waiters look again."""
        for event in self._events.get((owner, key), ()):
            event.set()

    def wake_all(self) -> None:
        """Notifications may have been missed (a lost subscription): everyone looks again."""
        for waiting in self._events.values():
            for event in waiting:
                event.set()

    def __bool__(self) -> bool:
        return bool(self._events)
