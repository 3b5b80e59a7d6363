"""The python-socketio anchor: an ASGI app served by uvicorn, the same events as the Node one.

``uvicorn bench.anchors.socketio_app:app``. WebSocket transport only (the load generator never
polls). Events:

- ``echo``: acknowledged with its argument (``42<id>["echo",{...}]`` -> ``43<id>[{...}]``).
- ``broadcast``: emits ``bench`` with its argument to every client (through Redis when the
  processes share it).

With ``BENCH_SOCKETIO_REDIS`` set, the processes share an ``AsyncRedisManager`` on that URL and
the pub/sub channel ``BENCH_SOCKETIO_CHANNEL``: a broadcast published there by any process
(the benchmark's own write-only manager, :mod:`bench.anchors.triggers`) reaches the clients of
all of them. The channel is the run's own because pub/sub channels are shared by every
database of a Redis server.
"""

from __future__ import annotations

import os
from typing import Any

import socketio

_redis_url = os.environ.get("BENCH_SOCKETIO_REDIS")
_manager = (
    socketio.AsyncRedisManager(
        _redis_url, channel=os.environ.get("BENCH_SOCKETIO_CHANNEL", "socketio")
    )
    if _redis_url
    else None
)
# Origins: the benchmark's clients send their server's own; "*" keeps the check out of the
# measured path on both anchors (Node's socket.io does not check WebSocket origins).
sio = socketio.AsyncServer(
    async_mode="asgi",
    client_manager=_manager,
    transports=["websocket"],
    cors_allowed_origins="*",
)


@sio.on("echo")
async def echo(sid: str, data: Any) -> Any:
    """Acknowledge with the argument: the echo round trip."""
    return data


@sio.on("broadcast")
async def broadcast(sid: str, data: Any) -> None:
    """Emit ``bench`` with the argument to every client of every process."""
    await sio.emit("bench", data)


app = socketio.ASGIApp(sio)
