"""Background calls that keep their order per key: membership changes sent to the layer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

T = TypeVar("T")


class OrderedCalls:
    """Runs coroutines as background tasks, one after another per key, concurrently across keys.

    A caller that needs the result awaits the returned task; one that does not (a handshake
    must not wait on Redis) lets it run. Keeping the order per key means a quick join then
    leave never reaches the layer as leave then join.
    """

    def __init__(self) -> None:
        self._last: dict[Hashable, asyncio.Task] = {}

    def run(self, key: Hashable, make: Callable[[], Awaitable[T]]) -> asyncio.Task[T]:
        """Start ``make()`` once every earlier call for ``key`` has finished."""
        task = asyncio.get_running_loop().create_task(self._after(self._last.get(key), make))
        self._last[key] = task
        task.add_done_callback(lambda done: self._forget(key, done))
        return task

    @staticmethod
    async def _after(previous: asyncio.Task | None, make: Callable[[], Awaitable[T]]) -> T:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        return await make()

    def _forget(self, key: Hashable, task: asyncio.Task) -> None:
        if self._last.get(key) is task:
            del self._last[key]
