"""A real WebSocket client (the ``websockets`` library) speaking the wscommands protocol."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect


class WSClient:
    """One connection; replies are matched by ``request_id``, pushes queued in order."""

    def __init__(self, ws: ClientConnection):
        self.ws = ws
        self.pushes: list[dict[str, Any]] = []
        self._replies: dict[int, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self._arrived = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, session_key: str | None = None, **options: Any) -> WSClient:
        """Connect to ``url`` (as the session's user); ``options`` go to ``connect`` (e.g.
        ``local_addr=("127.0.0.2", 0)``: another client IP on loopback)."""
        headers = {"Cookie": f"sessionid={session_key}"} if session_key else None
        return cls(await connect(url, additional_headers=headers, open_timeout=30, **options))

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                message = json.loads(text)
                future = self._replies.pop(message.get("request_id"), None)
                if future is not None:
                    future.set_result(message)
                    continue
                async with self._arrived:
                    self.pushes.append(message)
                    self._arrived.notify_all()
        finally:  # no reply will come: requests waiting for one fail now, not at their timeout
            for future in self._replies.values():
                if not future.done():
                    future.set_exception(ConnectionError(f"closed ({self.ws.close_code})"))
            self._replies.clear()

    async def wait_closed(self, timeout: float = 30) -> int | None:
        """Wait until the connection is closed (by either side); its close code."""
        async with asyncio.timeout(timeout):
            await asyncio.gather(self._reader, return_exceptions=True)
        return self.ws.close_code

    async def next_push(self, timeout: float = 15) -> dict[str, Any]:
        """Wait for (and take) the next message that is not a reply to a request."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: bool(self.pushes))
            return self.pushes.pop(0)

    async def request(self, commands: dict[str, Any], timeout: float = 15) -> dict[str, Any]:
        """Send one request and wait for its reply."""
        request_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._replies[request_id] = future
        await self.ws.send(json.dumps({**commands, "request_id": request_id}))
        return await asyncio.wait_for(future, timeout)

    async def call(self, name: str, **arguments: Any) -> Any:
        """One command's result; AssertionError with the error entry if it failed."""
        reply = await self.request({name: arguments})
        assert name not in reply.get("errors", {}), reply["errors"][name]
        return reply.get(name)

    async def push(
        self, key: str, match: Callable[[Any], bool] = lambda v: True, timeout: float = 10
    ) -> Any:
        """Wait for (and take) the first push ``{key: value}`` whose value matches."""

        def find() -> dict[str, Any] | None:
            return next((p for p in self.pushes if key in p and match(p[key])), None)

        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: find() is not None)
            found = find()
            self.pushes.remove(found)
            return found[key]

    async def wait_for(
        self, condition: Callable[[list[dict[str, Any]]], bool], timeout: float = 10
    ) -> None:
        """Wait until ``condition(pushes)`` holds (pushes stay where they are)."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: condition(self.pushes))

    def received(self, key: str, match: Callable[[Any], bool] = lambda v: True) -> bool:
        """Whether a matching push has already arrived (without waiting)."""
        return any(key in p and match(p[key]) for p in self.pushes)

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.gather(self._reader, return_exceptions=True)
