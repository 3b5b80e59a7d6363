"""The engine against the raw picows anchor (bench/anchors/raw_picows.py), side by side.

- ``echo``: the echo scenario (single.py) on one engine process and one raw picows process,
  both on the server core, in interleaved rounds: rows of the echo table.
- ``broadcast``: the broadcast scenario (cluster.py) on two engine processes sharing Redis
  (``wscommands.broadcast()``) and on one raw picows process (a control connection asks it
  to broadcast, no Redis: the floor), in interleaved rounds; every server on the server
  core, the load generator on the other.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import orjson
from picows import WSMsgType

from . import cluster, single
from .client import BenchClient, close_all, connect
from .config import Config
from .servers import Server, pin, start_all, stop_all

#: The label of the engine and of the anchor in the figures.
ENGINE, RAW = "wscommands", "raw picows"


class RawPicows(Server):
    """The raw picows anchor's process: ``RawPicows(RAW, "picows", env, cores, log_dir)``."""

    def command(self) -> list[str]:
        return [sys.executable, "-m", "bench.anchors.raw_picows", "--port", str(self.port)]


async def echo(cfg: Config, env: dict[str, str], core: int, log_dir: Path) -> dict[str, Any]:
    """Echo on one engine process against the raw picows anchor, both on ``core``."""
    servers: dict[str, Server] = {
        ENGINE: Server(ENGINE, "engine", env, cores={core}, log_dir=log_dir),
        RAW: RawPicows(RAW, "picows", env, {core}, log_dir),
    }
    start_all(list(servers.values()))
    try:
        return await single.echo(cfg, servers)
    finally:
        stop_all(list(servers.values()))


class RawTrigger:
    """Starts the anchor's broadcast number ``seq``: a ``{"broadcast": ...}`` frame on a
    control connection (the engine's is cluster.py's, ``wscommands.broadcast()``)."""

    def __init__(self, control: BenchClient):
        self.control = control

    async def __call__(self, seq: int) -> None:
        assert self.control.transport is not None
        message = {"broadcast": {"bench": {"seq": seq, "pad": cluster.PAD}}}
        self.control.transport.send(WSMsgType.TEXT, orjson.dumps(message))


async def broadcast(
    cfg: Config, env: dict[str, str], redis_url: str, log_dir: Path, cores: tuple[int, int]
) -> dict[str, Any]:
    """Broadcast to N clients: two engine processes on Redis against one raw picows process.

    ``cores``: (server core, load-generator core). Every server process is pinned to the
    first and this process, the load generator, to the second, as in the echo scenario:
    a load generator floating over both cores waits for a core while two busy servers hold
    them, and the time to the first receiver then measures the scheduler, not the server.
    ``env`` names Redis (``server_env(db, redis_url)``); the caller has set up Django in
    this process (``cluster.setup_django``) so that ``wscommands.broadcast()`` reaches it.
    """
    server_core, client_core = cores
    servers: dict[str, list[Server]] = {
        ENGINE: [Server(ENGINE, "engine", env, {server_core}, log_dir) for _ in (0, 1)],
        RAW: [RawPicows(RAW, "picows", env, {server_core}, log_dir)],
    }
    everything = [s for procs in servers.values() for s in procs]
    start_all(everything)
    control: BenchClient | None = None
    floating = os.sched_getaffinity(0)
    pin({client_core})
    try:
        control = await connect(servers[RAW][0].url)
        return await cluster.broadcast(cfg, servers, redis_url, {RAW: RawTrigger(control)})
    finally:
        pin(floating)
        if control is not None:
            await close_all([control])
        stop_all(everything)
