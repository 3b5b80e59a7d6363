"""The idle-connections scenario: how one engine process holds many idle connections.

Load-generator processes (``python -m bench.idle URL SOURCE``, one per source address
127.0.0.2, .3, ...: each address has its own ephemeral ports, and each process its own
open-file limit) open idle connections when told to on stdin. At each count (``idle_first``,
then the largest) this process opens ``idle_probes`` more, one at a time, timing each
handshake, and reads the server's RSS.

The count asked (``Config.idle_count``) is clamped to what RLIMIT_NOFILE lets the server
process hold, and the report says so.
"""

from __future__ import annotations

import asyncio
import json
import math
import resource
import sys
from pathlib import Path
from time import perf_counter
from typing import Any
from urllib.parse import urlsplit

from picows import WSListener, WSTransport, ws_connect

from .client import close_all, connect
from .config import Config
from .servers import Server, pin, raise_fd_limit, start_all, stop_all
from .stats import percentile

#: File descriptors the server needs besides the idle connections (probes, its listening
#: socket, database, logs, pipes).
RESERVE = 1000
#: Connections per load-generator process at most (each has its own RLIMIT_NOFILE).
PER_WORKER = 10_000
#: Handshakes a load generator has in flight at once.
BATCH = 100


def clamp(asked: int) -> tuple[int, str | None]:
    """The count this machine can measure, and why it is less than asked (None: it is not)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    room = hard - RESERVE
    if asked <= room:
        return asked, None
    return room, f"RLIMIT_NOFILE hard limit {hard} on this machine"


class Idle(WSListener):
    """A connection that only answers pings (picows's auto-pong) and closes when asked."""

    def on_ws_frame(self, transport: WSTransport, frame: Any) -> None:
        """Nothing to do: the server sends nothing to an idle connection but pings."""


async def open_idle(url: str, source: str, n: int) -> tuple[list[WSTransport], list[str]]:
    """Open ``n`` idle connections from ``source``, :data:`BATCH` at a time."""
    origin = {"Origin": f"http://{urlsplit(url).netloc}"}
    transports: list[WSTransport] = []
    failures: list[str] = []
    for start in range(0, n, BATCH):
        results = await asyncio.gather(
            *(
                ws_connect(
                    Idle,
                    url,
                    extra_headers=origin,
                    websocket_handshake_timeout=60,
                    read_buffer_init_size=1024,
                    local_addr=(source, 0),
                )
                for _ in range(min(BATCH, n - start))
            ),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                failures.append(f"{type(result).__name__}: {result}")
            else:
                transports.append(result[0])
    return transports, failures


async def worker(url: str, source: str) -> None:
    """The load generator's loop: ``open N`` opens N more and answers one JSON line;
    ``close`` (or end of input) closes them all."""
    loop = asyncio.get_running_loop()
    held: list[WSTransport] = []
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).split()
        if not line or line[0] == "close":
            break
        started = perf_counter()
        more, failures = await open_idle(url, source, int(line[1]))
        held += more
        answer = {"opened": len(more), "failures": failures[:3], "failed": len(failures)}
        print(json.dumps({**answer, "seconds": perf_counter() - started}), flush=True)
    for transport in held:
        transport.disconnect()
    print(json.dumps({"closed": len(held)}), flush=True)


class Workers:
    """The load-generator processes, one per source address."""

    def __init__(self, url: str, count: int, core: int):
        self.url, self.core = url, core
        self.sources = [f"127.0.0.{2 + i}" for i in range(max(1, math.ceil(count / PER_WORKER)))]
        self.procs: list[asyncio.subprocess.Process] = []
        self.held = [0] * len(self.sources)

    async def start(self) -> None:
        for source in self.sources:
            self.procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bench.idle",
                    self.url,
                    source,
                    str(self.core),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    cwd=Path(__file__).resolve().parent.parent,
                )
            )

    async def _ask(self, i: int, line: str) -> dict[str, Any]:
        proc = self.procs[i]
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(line.encode() + b"\n")
        await proc.stdin.drain()
        answer = await asyncio.wait_for(proc.stdout.readline(), 600)
        if not answer:
            raise RuntimeError(f"the idle load generator from {self.sources[i]} exited")
        return json.loads(answer)

    async def grow(self, total: int) -> dict[str, Any]:
        """Open connections until ``total`` are held, shared evenly by the processes."""
        need = total - sum(self.held)
        share = math.ceil(need / len(self.procs))
        asks = {i: min(share, need - share * i) for i in range(len(self.procs))}
        asks = {i: n for i, n in asks.items() if n > 0}
        answers = await asyncio.gather(*(self._ask(i, f"open {n}") for i, n in asks.items()))
        for i, answer in zip(asks, answers, strict=True):
            self.held[i] += answer["opened"]
        failures = [f for a in answers for f in a["failures"]]
        return {"failed": sum(a["failed"] for a in answers), "failures": failures}

    async def stop(self) -> None:
        for i, proc in enumerate(self.procs):
            try:
                await self._ask(i, "close")
            except (RuntimeError, TimeoutError, BrokenPipeError, ConnectionResetError):
                proc.kill()
            await proc.wait()


async def _probe(url: str, n: int) -> list[float]:
    """Connect ``n`` times one after the other: seconds to each handshake's 101."""
    times, clients = [], []
    for _ in range(n):
        started = perf_counter()
        clients.append(await connect(url))
        times.append(perf_counter() - started)
    await close_all(clients)
    return times


async def idle(cfg: Config, server: Server, core: int) -> dict[str, Any]:
    """Hold ``cfg.idle_count`` idle connections (clamped) on ``server``, an unstarted engine."""
    measured, clamped = clamp(cfg.idle_count)
    counts = sorted({min(cfg.idle_first, measured), measured})
    start_all([server])
    workers = Workers(server.url, measured, core)
    try:
        await _probe(server.url, 20)  # warm-up: the first connections import and allocate
        rss_0 = server.rss_bytes()
        await workers.start()
        points, failed, failures, open_seconds = [], 0, [], 0.0
        for count in counts:
            started = perf_counter()
            grown = await workers.grow(count)
            open_seconds += perf_counter() - started
            failed, failures = failed + grown["failed"], failures + grown["failures"]
            held = sum(workers.held)
            rss = server.rss_bytes()
            times = await _probe(server.url, cfg.idle_probes)
            points.append(
                {
                    "open": held,
                    "p50_ms": percentile(times, 0.5) * 1000,
                    "p90_ms": percentile(times, 0.9) * 1000,
                    "rss_mb": rss / 2**20,
                    "kb_per_connection": (rss - rss_0) / 1024 / max(1, held),
                }
            )
    finally:
        await workers.stop()
        stop_all([server])
    return {
        "asked": cfg.idle_count,
        "measured": measured,
        "clamped": clamped,
        "sources": workers.sources,
        "workers": len(workers.sources),
        "probes": cfg.idle_probes,
        "points": points,
        "opened": sum(workers.held),
        "failures": failed,
        "failure_samples": failures[:5],
        "open_seconds": open_seconds,
        "rss_0_mb": rss_0 / 2**20,
    }


def main() -> None:
    """``python -m bench.idle URL SOURCE CORE``: one load generator (see :func:`worker`)."""
    url, source, core = sys.argv[1], sys.argv[2], int(sys.argv[3])
    raise_fd_limit()
    pin({core})
    asyncio.run(worker(url, source))


if __name__ == "__main__":
    main()
