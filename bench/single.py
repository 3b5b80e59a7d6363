"""Scenarios on one server process: echo round trip, a slow sync command, idle memory.

Each takes the two servers (``{"wscommands": Server, "baseline": Server}``) and returns a
JSON-able dict with per-round figures and their medians.
"""

from __future__ import annotations

import asyncio
import time
from time import perf_counter
from typing import Any

from .client import BenchClient, close_all, connect, connect_many
from .config import Config
from .servers import Server, start_all, stop_all
from .stats import interleaved, medians, percentile

ECHO_KEYS = ("replies_per_s", "p50_ms", "p99_ms", "client_cpu", "server_cpu", "replies_per_cpu_s")


async def echo_round(
    clients: list[BenchClient], seconds: float, server: Server, command: str = "echo"
) -> dict:
    latencies: list[float] = []
    cpu0, server_cpu0 = time.process_time(), server.cpu_seconds()
    started = perf_counter()
    await asyncio.gather(*(c.echo_loop(started + seconds, latencies, command) for c in clients))
    wall = perf_counter() - started
    server_cpu = server.cpu_seconds() - server_cpu0
    return {
        "replies": len(latencies),
        "replies_per_s": len(latencies) / wall,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        # Share of one core the load generator used: well below 1.0 means it kept up.
        "client_cpu": (time.process_time() - cpu0) / wall,
        "server_cpu": server_cpu / wall,
        # Work per reply, whatever share of the core others left the server: the figure
        # that stays comparable on a busy machine.
        "replies_per_cpu_s": len(latencies) / server_cpu if server_cpu else None,
    }


async def echo(cfg: Config, servers: dict[str, Server]) -> dict[str, Any]:
    """Closed-loop echo on ``echo_clients`` connections per app, interleaved rounds."""
    clients: dict[str, list[BenchClient]] = {}
    failures: dict[str, list[str]] = {}
    for app, server in servers.items():
        clients[app], failures[app] = await connect_many([server.url], cfg.echo_clients)
    rounds: dict[str, list[dict]] = {app: [] for app in servers}
    try:
        for app in servers:  # warm-up, not recorded
            await echo_round(clients[app], min(0.5, cfg.echo_seconds), servers[app])
        for _r, app in interleaved(cfg.rounds, list(servers)):
            rounds[app].append(await echo_round(clients[app], cfg.echo_seconds, servers[app]))
    finally:
        for app in servers:
            await close_all(clients[app])
    return {
        app: {
            "rounds": rounds[app],
            "median": medians(rounds[app], ECHO_KEYS),
            "clients": len(clients[app]),
            "connect_failures": failures[app],
            "min_replies_per_client": min((c.replies for c in clients[app]), default=0),
            "errors": sum(c.errors for c in clients[app]),
        }
        for app in servers
    }


async def typed(cfg: Config, server: Server) -> dict[str, Any]:
    """Echo through a typed Struct argument (``echo.typed``) against ``echo``, same server.

    One wscommands server and one set of connections; the two commands take turns round by
    round, so both see the same machine load.
    """
    clients, failures = await connect_many([server.url], cfg.echo_clients)
    commands = ["echo", "echo.typed"]
    rounds: dict[str, list[dict]] = {command: [] for command in commands}
    try:
        for command in commands:  # warm-up, not recorded
            await echo_round(clients, min(0.5, cfg.echo_seconds), server, command)
        for _r, command in interleaved(cfg.rounds, commands):
            rounds[command].append(await echo_round(clients, cfg.echo_seconds, server, command))
    finally:
        await close_all(clients)
    return {
        "commands": {
            command: {"rounds": rounds[command], "median": medians(rounds[command], ECHO_KEYS)}
            for command in commands
        },
        "clients": len(clients),
        "connect_failures": failures,
        "errors": sum(c.errors for c in clients),
    }


async def _square_latencies(client: BenchClient, until: float, minimum: int) -> list[float]:
    """Closed loop of ``{"square": 3}`` until ``until`` (at least ``minimum`` of them)."""
    latencies = []
    while len(latencies) < minimum or perf_counter() < until:
        reply, took = await client.request({"square": 3, "request_id": len(latencies)})
        if reply.get("square") != 9:
            raise AssertionError(f"unexpected reply to square: {reply}")
        latencies.append(took)
    return latencies


async def _slow_round(server: Server, seconds: float) -> dict:
    sleeper, other = await connect(server.url), await connect(server.url)
    try:
        idle = await _square_latencies(other, 0, 20)
        sleeping = asyncio.ensure_future(
            sleeper.request({"sleep": {"seconds": seconds}, "request_id": 1}, timeout=seconds + 30)
        )
        started = perf_counter()
        during = await _square_latencies(other, started + seconds * 0.9, 1)
        reply, took = await sleeping
        if reply.get("sleep") != seconds:
            raise AssertionError(f"unexpected reply to sleep: {reply}")
    finally:
        await close_all([sleeper, other])
    idle_ms = percentile(idle, 0.5) * 1000
    return {
        "idle_p50_ms": idle_ms,
        "during_p50_ms": percentile(during, 0.5) * 1000,
        "during_max_ms": max(during) * 1000,
        "added_p50_ms": percentile(during, 0.5) * 1000 - idle_ms,
        "added_max_ms": max(during) * 1000 - idle_ms,
        "requests_during": len(during),
        "sleep_ms": took * 1000,
    }


async def slow(cfg: Config, servers: dict[str, Server]) -> dict[str, Any]:
    """A ``slow_seconds`` sync ``sleep`` on one connection; another runs ``square`` meanwhile."""
    rounds: dict[str, list[dict]] = {app: [] for app in servers}
    for _r, app in interleaved(cfg.rounds, list(servers)):
        rounds[app].append(await _slow_round(servers[app], cfg.slow_seconds))
    keys = ("idle_p50_ms", "during_p50_ms", "during_max_ms", "added_p50_ms", "added_max_ms")
    return {app: {"rounds": rounds[app], "median": medians(rounds[app], keys)} for app in servers}


async def _memory_round(server: Server, n: int) -> dict:
    # Warm-up: the first connections import and allocate what every later one shares.
    warm, _ = await connect_many([server.url], 20)
    await asyncio.gather(*(c.request({"echo": {"text": "warm"}}) for c in warm))
    await close_all(warm)
    before = server.rss_bytes()
    clients, failures = await connect_many([server.url], n)
    # One request each: every connection is fully set up server-side before we measure.
    await asyncio.gather(*(c.request({"echo": {"text": "x"}, "request_id": 1}) for c in clients))
    after = server.rss_bytes()
    await close_all(clients)
    return {
        "rss_0_mb": before / 2**20,
        "rss_n_mb": after / 2**20,
        "kb_per_connection": (after - before) / 1024 / max(1, len(clients)),
        "connected": len(clients),
        "failures": len(failures),
    }


async def memory(cfg: Config, make: dict[str, Any]) -> dict[str, Any]:
    """RSS at 0 and ``idle_connections`` connections; a fresh server pair per round.

    ``make`` maps each app to a zero-argument factory of an unstarted :class:`Server`.
    """
    rounds: dict[str, list[dict]] = {app: [] for app in make}
    for r in range(cfg.memory_rounds):
        servers = {app: factory() for app, factory in make.items()}
        start_all(list(servers.values()))
        try:
            for _r, app in interleaved(1, list(servers) if r % 2 == 0 else list(servers)[::-1]):
                rounds[app].append(await _memory_round(servers[app], cfg.idle_connections))
        finally:
            stop_all(list(servers.values()))
    keys = ("rss_0_mb", "rss_n_mb", "kb_per_connection")
    return {app: {"rounds": rounds[app], "median": medians(rounds[app], keys)} for app in make}
