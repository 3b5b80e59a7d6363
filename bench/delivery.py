"""Delivery scenarios (issue 9) on two processes sharing Redis.

- ``fanout``: a broadcast to N clients with stream history on vs off (``HISTORY_SIZE`` 0), and
  under daphne, uvicorn and the engine: milliseconds to the first and to the last client,
  Redis commands per broadcast. The variants run one after the other (each with its own pair
  of processes), since they share the channel layer's groups.
- ``resume``: a resumable client misses ``Config.resume_missed`` broadcasts, reconnects and resumes:
  milliseconds from sending ``wscommands.resume`` to its reply, which comes after the replay.
"""

from __future__ import annotations

import asyncio
import json
from time import perf_counter
from typing import Any

import orjson
from websockets.asyncio.client import connect

from . import cluster
from .config import Config
from .servers import Server, start_all, stop_all
from .stats import medians

#: (server, label, WSCOMMANDS overrides) of the fan-out variants.
VARIANTS = (
    ("daphne", "history on", {}),
    ("daphne", "history off", {"HISTORY_SIZE": 0}),
    ("uvicorn", "history on", {}),
    ("engine", "history on", {}),
)


async def fanout(cfg: Config, env: dict[str, str], redis_url: str, log_dir: Any) -> dict:
    """Per variant and client count: ms to first and last client, Redis commands."""
    results: dict[str, Any] = {}
    for kind, label, overrides in VARIANTS:
        variant_env = {**env, "WSCOMMANDS_LIMITS": json.dumps(overrides)}
        procs = [
            Server("wscommands", kind, variant_env, cores={i}, log_dir=log_dir) for i in (0, 1)
        ]
        start_all(procs)
        try:
            # The trigger records history (or not) as the servers do: it runs under their
            # overrides (cluster.Broadcaster).
            figures = await cluster.broadcast(cfg, {"wscommands": procs}, redis_url)
            results[f"{kind}, {label}"] = figures["wscommands"]
        finally:
            stop_all(procs)
    return results


async def _resume_once(url: str, missed: int) -> dict[str, Any]:
    import wscommands

    async with connect(url) as ws:
        announced = orjson.loads(await asyncio.wait_for(ws.recv(), 30))
        position = announced["wscommands.streams"]["all"]
    for seq in range(missed):
        await wscommands.broadcast({"bench": {"seq": seq, "pad": cluster.PAD}})
    async with connect(url, max_queue=None) as ws:
        await asyncio.wait_for(ws.recv(), 30)  # this connection's own announcement
        request = {"wscommands.resume": {"streams": {"all": position}}, "request_id": "r"}
        started = perf_counter()
        await ws.send(orjson.dumps(request).decode())
        replayed = 0
        while True:
            message = orjson.loads(await asyncio.wait_for(ws.recv(), 30))
            if message.get("request_id") == "r":
                break
            replayed += "bench" in message
        seconds = perf_counter() - started
    entry = message.get("wscommands.resume", {}).get("all", {})
    return {"ms": seconds * 1000, "replayed": replayed, "recovered": entry.get("recovered")}


async def resume(cfg: Config, env: dict[str, str], log_dir: Any, missed: int) -> dict:
    """Time to resume ``missed`` broadcasts on one daphne process (Redis history)."""
    server = Server("wscommands", "daphne", env, cores={0}, log_dir=log_dir)
    start_all([server])
    try:
        url = server.url + "?resume=1"
        rounds = [await _resume_once(url, missed) for _ in range(cfg.rounds)]
    finally:
        stop_all([server])
    return {"missed": missed, "rounds": rounds, "median": medians(rounds, ("ms",))}
