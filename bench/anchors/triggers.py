"""How the broadcast scenario makes each anchor broadcast push number ``seq``.

- python-socketio: a write-only ``AsyncRedisManager`` in the benchmark process publishes the
  emit on the servers' channel, python-socketio's documented way to emit from outside a
  server, and the counterpart of wscommands' broadcast from the benchmark process through
  the channel layer: one publish, each process delivers to its own clients.
- Node.js Socket.IO (one process, no broker): a trigger connection of its own sends the
  ``broadcast`` event, and the server emits ``bench`` to every client.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from ..client import close_all, connect
from ..servers import Server
from .client import SocketIOClient
from .servers import CHANNEL_VAR, NODE, PYTHON

#: Pushes number ``seq``; the broadcast scenario times from its call.
Trigger = Callable[[int], Awaitable[None]]


@contextlib.asynccontextmanager
async def broadcast_triggers(
    servers: dict[str, list[Server]], redis_url: str, pad: str
) -> AsyncIterator[dict[str, Trigger]]:
    """One trigger per anchor in ``servers``; the push is ``{"seq": seq, "pad": pad}``."""
    triggers: dict[str, Trigger] = {}
    closers: list[Callable[[], Awaitable[object]]] = []
    if PYTHON in servers:
        import socketio

        channel = servers[PYTHON][0].env[CHANNEL_VAR]
        manager = socketio.AsyncRedisManager(redis_url, channel=channel, write_only=True)

        async def publish(seq: int) -> None:
            await manager.emit("bench", {"seq": seq, "pad": pad})

        async def disconnect() -> None:
            # The manager connects on its first publish and has no close of its own.
            if getattr(manager, "redis", None) is not None:
                await manager.redis.aclose()

        triggers[PYTHON] = publish
        closers.append(disconnect)
    if NODE in servers:
        sender = await connect(servers[NODE][0].url)
        assert isinstance(sender, SocketIOClient)

        async def emit(seq: int) -> None:
            sender.emit("broadcast", {"seq": seq, "pad": pad})

        triggers[NODE] = emit
        closers.append(lambda: close_all([sender]))
    try:
        yield triggers
    finally:
        for close in closers:
            await close()
