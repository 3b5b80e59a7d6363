"""Runs the scenarios, writes results JSON, docs/benchmarks.md and the plot.

``python -m bench [--quick | --tiny] [--only echo,typed,...,idle,replay-flood]`` (``--help``
lists every scenario)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import cluster, delivery, engine, idle, latency, replay, single
from .anchors import servers as anchors
from .anchors.triggers import broadcast_triggers
from .config import FULL, QUICK, TINY, Config
from .report import write_markdown, write_plot
from .servers import (
    ROOT,
    Server,
    migrate,
    pin,
    private_redis,
    raise_fd_limit,
    server_env,
    start_all,
    stop_all,
)

SCENARIOS = (
    "echo",
    "typed",
    "slow",
    "memory",
    "broadcast",
    "burst",
    "metrics",
    "fanout",
    "resume",
    "crash-leave",
    "logout-close",
    "idle",
    "replay-flood",
)
#: The Redis of the two-process scenarios when redis-server is not installed to start one.
SHARED_REDIS = "redis://127.0.0.1:6379/14"
#: The two servers of the metrics scenario: wscommands with Prometheus metrics on and off.
METRICS_ON, METRICS_OFF = "metrics on", "metrics off"
APPS = ("wscommands", "baseline")
PACKAGES = ("django", "channels", "channels-redis", "redis", "daphne", "uvicorn", "picows")
#: Server logs of the last run (kept to explain a missed message or a failed handshake).
LOGS = ROOT / "bench" / "results" / "logs"
#: Single-process scenarios: the server on core 0, the load generator on core 1.
SERVER_CORE, CLIENT_CORE = 0, 1


def progress(message: str) -> None:
    """One line on stderr per step, so a long run shows where it is."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), ""
            )
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "?"
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "commit": commit,
        "packages": versions,
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


async def run(cfg: Config, only: tuple[str, ...], redis_url: str, workdir: Path) -> dict:
    """Run the chosen scenarios; returns every figure (JSON-able)."""
    raise_fd_limit()
    shutil.rmtree(LOGS, ignore_errors=True)
    db = workdir / "bench.sqlite3"
    migrate(db)
    local_env = server_env(db, None)
    results: dict[str, Any] = {}
    if {"echo", "broadcast"} & set(only):
        # The Socket.IO anchors (bench/anchors/) join those two scenarios where installed.
        results["anchors"] = {"versions": anchors.versions(), "missing": anchors.missing()}
    all_cores = os.sched_getaffinity(0)

    def single_server(app: str, kind: str) -> Server:
        return Server(app, kind, local_env, cores={SERVER_CORE}, log_dir=LOGS)

    pin({CLIENT_CORE})
    try:
        for kind in ("daphne", "uvicorn") if "echo" in only else ():
            servers = {app: single_server(app, kind) for app in APPS}
            if kind == "uvicorn":  # in wscommands' rounds: same-run ratios
                servers |= anchors.echo_servers(local_env, {SERVER_CORE}, LOGS)
            start_all(list(servers.values()))
            try:
                progress(f"echo under {kind}")
                results.setdefault("echo", {})[kind] = await single.echo(cfg, servers)
                if kind == "daphne" and "typed" in only:
                    progress("echo with a typed Struct argument against echo")
                    results["typed"] = await single.typed(cfg, servers["wscommands"])
                if kind == "daphne" and "slow" in only:
                    progress("slow sync command")
                    results["slow"] = await single.slow(cfg, servers)
            finally:
                stop_all(list(servers.values()))
        if "echo" in only:
            progress("echo under the engine, against raw picows")
            results["echo"]["engine"] = await engine.echo(cfg, local_env, SERVER_CORE, LOGS)
        if "typed" in only and "typed" not in results:
            server = single_server("wscommands", "daphne")
            start_all([server])
            try:
                progress("echo with a typed Struct argument against echo")
                results["typed"] = await single.typed(cfg, server)
            finally:
                stop_all([server])
        if "slow" in only and "slow" not in results:
            servers = {app: single_server(app, "daphne") for app in APPS}
            start_all(list(servers.values()))
            try:
                progress("slow sync command")
                results["slow"] = await single.slow(cfg, servers)
            finally:
                stop_all(list(servers.values()))
        if "metrics" in only:
            off_env = {**local_env, "WSCOMMANDS_LIMITS": json.dumps({"METRICS": False})}
            servers = {
                METRICS_ON: Server("wscommands", "daphne", local_env, {SERVER_CORE}, LOGS),
                METRICS_OFF: Server("wscommands", "daphne", off_env, {SERVER_CORE}, LOGS),
            }
            start_all(list(servers.values()))
            try:
                progress("echo with metrics on and off")
                results["metrics"] = await single.echo(cfg, servers)
            finally:
                stop_all(list(servers.values()))
        if "idle" in only:
            progress(f"idle connections on the engine ({cfg.idle_count:,} asked)")
            server = single_server("wscommands", "engine")
            results["idle"] = await idle.idle(cfg, server, CLIENT_CORE)
        if "replay-flood" in only:
            progress("replay flood: a bystander's echo while one socket replays 500 pushes")
            results["replay-flood"] = await replay.replay_flood()
        if "memory" in only:
            progress("idle memory")
            makers = {app: (lambda app=app: single_server(app, "daphne")) for app in APPS}
            results["memory"] = await single.memory(cfg, makers)
    finally:
        pin(all_cores)
    if {"broadcast", "burst", "fanout", "resume", "crash-leave", "logout-close"} & set(only):
        import redis

        redis.Redis.from_url(redis_url).flushdb()
        cluster.setup_django(redis_url, db)
        from django.conf import settings

        results["channel_layer"] = settings.CHANNEL_LAYERS["default"]["BACKEND"]
        redis_env = server_env(db, redis_url)
        # One process of each pair per core; the load generator and Redis float.
        servers2 = {
            app: [Server(app, "daphne", redis_env, cores={i}, log_dir=LOGS) for i in (0, 1)]
            for app in (APPS if {"broadcast", "burst"} & set(only) else ())
        }
        # wscommands under uvicorn (a prefix of its own) and the anchors broadcast only (the
        # burst compares wscommands with the baseline on daphne).
        broadcast_only = (
            {cluster.UVICORN: cluster.uvicorn_pair(redis_env, LOGS)}
            | anchors.broadcast_servers(redis_env, redis_url, LOGS)
            if "broadcast" in only
            else {}
        )
        every = [s for procs in (servers2 | broadcast_only).values() for s in procs]
        start_all(every)
        try:
            if "broadcast" in only:
                progress("broadcast")
                async with broadcast_triggers(broadcast_only, redis_url, cluster.PAD) as triggers:
                    results["broadcast"] = await cluster.broadcast(
                        cfg, servers2 | broadcast_only, redis_url, triggers
                    )
            if "burst" in only:
                progress("burst")
                results["burst"] = await cluster.burst(cfg, servers2)
        finally:
            stop_all(every)
        if "broadcast" in only:
            progress("broadcast: the engine against raw picows")
            results["broadcast_engine"] = await engine.broadcast(
                cfg, redis_env, redis_url, LOGS, (SERVER_CORE, CLIENT_CORE)
            )
        if "fanout" in only:
            progress("fan-out: history on/off, daphne/uvicorn")
            results["fanout"] = await delivery.fanout(cfg, redis_env, redis_url, LOGS)
        if "resume" in only:
            progress("resume")
            results["resume"] = await delivery.resume(cfg, redis_env, LOGS, cfg.resume_missed)
        if "crash-leave" in only:
            progress("crash-leave: kill -9 of a process, until a watcher saw its users leave")
            results["crash-leave"] = await latency.crash_leave(cfg, redis_env, LOGS)
        if "logout-close" in only:
            progress("logout-close: a logout or deleted session, until its sockets had 4401")
            results["logout-close"] = await latency.logout_close(cfg, redis_env, LOGS)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="fewer rounds (about 2 minutes)")
    size.add_argument("--tiny", action="store_true", help="a few clients, one round (tests)")
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help=f"comma-separated scenarios (of {', '.join(SCENARIOS)})",
    )
    parser.add_argument(
        "--idle-count",
        type=int,
        help="idle connections the idle scenario asks for (default: 50,000; 40 with --tiny), "
        "clamped to what RLIMIT_NOFILE lets one process hold",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL"),
        help="Redis for the two-process scenarios (its database is flushed; default: a "
        f"redis-server of the run's own, else {SHARED_REDIS})",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where to write the docs")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG (no matplotlib)")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    only = tuple(s for s in args.only.split(",") if s)
    unknown = set(only) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    cfg = TINY if args.tiny else QUICK if args.quick else FULL
    if args.idle_count is not None:
        cfg = dataclasses.replace(cfg, idle_count=args.idle_count)
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"

    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with (
        tempfile.TemporaryDirectory(dir=ROOT / "bench" / "results") as tmp,
        private_redis() if args.redis_url is None else contextlib.nullcontext() as own,
    ):
        redis_url = args.redis_url or own or SHARED_REDIS
        figures = asyncio.run(run(cfg, only, redis_url, Path(tmp)))
    command = "make bench" + (f" BENCH_ARGS={shlex.quote(' '.join(argv))}" if argv else "")
    results = {"mode": mode, "command": command, "machine": machine(), "results": figures}
    results["machine"]["load"] = f"{load_before} before, {results['machine']['load']} after"
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str))
    args.out.mkdir(parents=True, exist_ok=True)
    plot = None
    if not args.no_plot and "broadcast" in figures:
        plot = write_plot(figures["broadcast"], args.out / "benchmarks.png")
    write_markdown(results, args.out / "benchmarks.md", plot)
    print((args.out / "benchmarks.md").read_text())
    return 0
