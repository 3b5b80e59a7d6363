"""Scenarios on two server processes sharing Redis: broadcast fan-out and a connection burst.

A broadcast is triggered from this process, through the same channel layer the servers use:
``wscommands.broadcast()`` for wscommands, one ``group_send`` to the group every baseline
consumer joined for the baseline. Both cost the sender one ``group_send``; what differs is how
each server delivers it to its connections.

Every wscommands process on the same Redis and ``WSCOMMANDS["PREFIX"]`` receives every
``wscommands.broadcast()``. Two wscommands pairs can take part in the same rounds when each
runs with a prefix of its own (:func:`uvicorn_pair`): the trigger broadcasts under the
settings its pair's servers run with (:class:`Broadcaster`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from time import perf_counter
from typing import Any

import redis

from .client import BenchClient, PushCounter, close_all, connect_many
from .config import Config
from .servers import Server
from .stats import interleaved, medians

PAD = "x" * 64
#: Gap between two broadcasts, so one's tail never overlaps the next one's start.
GAP = 0.05
#: The broadcast scenario's second wscommands pair (two uvicorn processes): its result key and
#: its ``WSCOMMANDS["PREFIX"]``, so that its channel-layer groups and Redis keys (the stream
#: history of ``all``) are not the daphne pair's. A Redis database of its own would not do:
#: pub/sub channels are shared by every database of a server.
UVICORN, UVICORN_PREFIX = "wscommands-uvicorn", "bench-uvicorn"


def setup_django(redis_url: str, db_path: Path) -> None:
    """Configure Django in this process with the servers' settings, channel layer and
    database (the latency scenarios make and delete the servers' sessions)."""
    import django

    os.environ["REDIS_URL"] = redis_url
    os.environ["DATABASE_URL"] = f"sqlite:///{db_path}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    django.setup()


def uvicorn_pair(env: dict[str, str], log_dir: Path) -> list[Server]:
    """wscommands on two uvicorn processes, one per core, under :data:`UVICORN_PREFIX`."""
    own = {**env, "WSCOMMANDS_LIMITS": json.dumps({"PREFIX": UVICORN_PREFIX})}
    return [Server("wscommands", "uvicorn", own, cores={i}, log_dir=log_dir) for i in (0, 1)]


async def _baseline_trigger(seq: int) -> None:
    import orjson
    from channels.layers import get_channel_layer

    from .baseline_asgi import GROUP

    text = orjson.dumps({"bench": {"seq": seq, "pad": PAD}}).decode()
    await get_channel_layer().group_send(GROUP, {"type": "bench.message", "text": text})


class Broadcaster:
    """``wscommands.broadcast()`` of push ``seq`` to a pair of wscommands servers, under the
    ``WSCOMMANDS`` overrides those servers run with (``WSCOMMANDS_LIMITS`` in their
    environment, bench/settings.py): the same prefix, the same history settings."""

    def __init__(self, procs: list[Server]) -> None:
        self.overrides = json.loads(procs[0].env.get("WSCOMMANDS_LIMITS") or "{}")

    @contextlib.asynccontextmanager
    async def round_settings(self) -> AsyncIterator[None]:
        """This process's wscommands settings for one round, its Redis client connected."""
        from django.conf import settings
        from django.test import override_settings

        from wscommands.backends import get_backend

        # A change of settings makes new stores: connecting here, before the round measures,
        # keeps the handshake out of its first broadcast and its Redis command count.
        with override_settings(WSCOMMANDS={**settings.WSCOMMANDS, **self.overrides}):
            backend = get_backend()
            await backend.get_global_state("bench")
            try:
                yield
            finally:
                await backend.close()

    async def __call__(self, seq: int) -> None:
        import wscommands

        await wscommands.broadcast({"bench": {"seq": seq, "pad": PAD}})


def _command_calls(r: redis.Redis) -> dict[str, int]:
    # Deltas of the server-wide counters, never CONFIG RESETSTAT: other users' view stays.
    calls = {
        name.removeprefix("cmdstat_"): stats["calls"]
        for name, stats in r.info("commandstats").items()
    }
    calls.pop("info", None)  # our own probes
    return calls


def _redis_delta(r: redis.Redis, since: dict[str, int]) -> dict[str, int]:
    now = _command_calls(r)
    return {k: v - since.get(k, 0) for k, v in now.items() if v - since.get(k, 0)}


async def _broadcast_batch(
    trigger: Callable[[int], Awaitable[None]],
    pushes: PushCounter,
    expected: int,
    count: int,
    seq: int,
) -> tuple[list[float], int]:
    """``count`` broadcasts, one after the other; returns (to the first, to the last client)
    times and how many deliveries were missed."""
    times, missed = [], 0
    for k in range(count):
        done = pushes.arm(seq + k, expected)
        started = perf_counter()
        await trigger(seq + k)
        try:
            await asyncio.wait_for(done, timeout=30)
            times.append((pushes.first - started, pushes.last - started))
        except TimeoutError:
            missed += expected - pushes.count
        await asyncio.sleep(GAP)
    return times, missed


def _median(seconds: list[float]) -> float | None:
    return sorted(seconds)[len(seconds) // 2] * 1000 if seconds else None


#: Seconds over which the background rate of Redis commands is measured, per client count.
BACKGROUND_SPAN = 3.0


async def _background_rate(r: redis.Redis) -> dict[str, float]:
    """Redis commands per second while nothing is broadcast (others' traffic, the layers'
    blocking reads, each process's once-a-second heartbeats), by command."""
    since, started = _command_calls(r), perf_counter()
    await asyncio.sleep(BACKGROUND_SPAN)
    span = perf_counter() - started
    return {k: v / span for k, v in _redis_delta(r, since).items()}


async def _measured_round(
    r: redis.Redis,
    trigger: Callable[[int], Awaitable[None]],
    procs: list[Server],
    pushes: PushCounter,
    size: int,
    n: int,
    seq: int,
    background: dict[str, float],
) -> dict[str, Any]:
    """``n`` broadcasts to ``size`` clients with their cost in Redis commands and CPU.

    ``background``: :func:`_background_rate`, subtracted over the round's span. (It is read
    over seconds: heartbeats come once a second per process, so a window as short as a round
    catches several or none of them.)
    """
    since, cpu0 = _command_calls(r), time.process_time()
    server_cpu0 = sum(s.cpu_seconds() for s in procs)
    started = perf_counter()
    times, missed = await _broadcast_batch(trigger, pushes, size, n, seq)
    span = perf_counter() - started
    server_cpu = sum(s.cpu_seconds() for s in procs) - server_cpu0
    used = _redis_delta(r, since)
    per_command = {k: round((v - background.get(k, 0.0) * span) / n, 2) for k, v in used.items()}
    return {
        "ms_to_first": _median([t[0] for t in times]),
        "ms_to_last": _median([t[1] for t in times]),
        "missed": missed,
        "redis_commands": sum(per_command.values()),
        "redis_by_command": {k: v for k, v in per_command.items() if v >= 0.5},
        "client_cpu_ms": (time.process_time() - cpu0) * 1000 / n,
        # Both processes, idle gaps included (1/100 s clock ticks: coarse, use medians).
        "server_cpu_ms": server_cpu * 1000 / n,
    }


def _round_of(
    trigger: Callable[[int], Awaitable[None]],
) -> contextlib.AbstractAsyncContextManager[None]:
    """What one round of a trigger's app runs in: its servers' settings for wscommands."""
    if isinstance(trigger, Broadcaster):
        return trigger.round_settings()
    return contextlib.nullcontext()


async def broadcast(
    cfg: Config,
    servers: dict[str, list[Server]],
    redis_url: str,
    triggers: dict[str, Callable[[int], Awaitable[None]]] | None = None,
) -> dict:
    """Time until the last of N clients has a broadcast, and Redis commands per broadcast.

    Clients are spread evenly over the processes of each app; the client count grows
    through ``broadcast_sizes`` (connections are kept, new ones added). ``triggers``: how an
    app other than wscommands and the baseline broadcasts push ``seq`` (the anchors'). Each
    wscommands app's rounds run under its servers' settings (:class:`Broadcaster`).
    """
    given = triggers or {}
    own: dict[str, Callable[[int], Awaitable[None]]] = {
        app: _baseline_trigger if app == "baseline" else Broadcaster(procs)
        for app, procs in servers.items()
        if app not in given
    }
    triggers = own | given
    r = redis.Redis.from_url(redis_url)
    pushes = {app: PushCounter() for app in servers}
    clients: dict[str, list[BenchClient]] = {app: [] for app in servers}
    results: dict[str, dict[str, Any]] = {app: {} for app in servers}
    n = cfg.broadcasts_per_round
    seq = 0
    try:
        for size in cfg.broadcast_sizes:
            for app, procs in servers.items():
                more, failures = await connect_many(
                    [s.url for s in procs], size - len(clients[app]), pushes=pushes[app]
                )
                if failures:
                    raise RuntimeError(f"{app}: {len(failures)} connections failed: {failures[0]}")
                clients[app] += more
            rounds: dict[str, list[dict]] = {app: [] for app in servers}
            background = await _background_rate(r)
            for _r, app in interleaved(cfg.rounds, list(servers)):
                trigger = triggers[app]
                async with _round_of(trigger):
                    rounds[app].append(
                        await _measured_round(
                            r, trigger, servers[app], pushes[app], size, n, seq, background
                        )
                    )
                seq += n
            keys = ("ms_to_first", "ms_to_last", "redis_commands", "server_cpu_ms", "client_cpu_ms")
            for app in servers:
                results[app][size] = {
                    "rounds": rounds[app],
                    "median": medians(rounds[app], keys),
                    "missed": sum(x["missed"] for x in rounds[app]),
                    # Others' traffic only adds to the server-wide counters: the fewest
                    # commands a round saw is the least disturbed figure.
                    "min_redis_commands": min(x["redis_commands"] for x in rounds[app]),
                    "duplicates": pushes[app].duplicates,
                    "strays": pushes[app].strays,
                }
    finally:
        for app in servers:
            await close_all(clients[app])
        r.close()
    return results


async def _burst_round(procs: list[Server], n: int, batch: int) -> dict:
    started = perf_counter()
    clients, failures = await connect_many([s.url for s in procs], n, batch)
    connect_s = perf_counter() - started
    # Each connection answers a request: it is fully usable, not just accepted.
    replies = await asyncio.gather(
        *(c.request({"echo": {"text": "burst"}, "request_id": 1}) for c in clients),
        return_exceptions=True,
    )
    bad = [x for x in replies if isinstance(x, BaseException) or x[0].get("request_id") != 1]
    await close_all(clients)
    return {
        "connected": len(clients),
        "failed": len(failures) + len(bad),
        "errors": sorted({str(x) for x in failures + bad})[:5],
        "seconds": connect_s,
    }


async def burst(cfg: Config, servers: dict[str, list[Server]]) -> dict:
    """``burst_clients`` handshakes, ``burst_batch`` at a time, over two processes."""
    rounds: dict[str, list[dict]] = {app: [] for app in servers}
    for _r, app in interleaved(cfg.burst_rounds, list(servers)):
        rounds[app].append(await _burst_round(servers[app], cfg.burst_clients, cfg.burst_batch))
    return {
        app: {
            "rounds": rounds[app],
            "failed": sum(x["failed"] for x in rounds[app]),
            "median": medians(rounds[app], ("seconds",)),
        }
        for app in servers
    }
