"""``python -m bench.instructions [REV]``: instructions per echo request, counted by callgrind.

Serves the example project (this tree's, or commit REV's) with one server process run under
``valgrind --tool=callgrind``, instrumentation off until the connections are open and warmed
up; then counts every instruction the server executes for a fixed number of closed-loop echo
requests (``--clients`` connections, each sending its next request when its reply arrives)
and prints the total divided by the number of requests. Unlike wall-clock or CPU-second
figures, the count hardly depends on what else the machine runs (under 1% between runs on a
quiet machine, up to 3% on a very busy one: the process's periodic work is counted too, and
how many frames arrive per turn of the event loop varies; ``--clients 1`` varies least), so
two trees can be compared one after the other. It includes everything the server process
does for a request: the server's WebSocket code, Channels, wscommands, the event loop. Needs
valgrind (callgrind_control) on the PATH.

``--kind``: ``uvicorn`` or ``daphne`` (the ASGI app), ``engine`` (``manage.py
wscommands_engine``) or ``picows`` (the raw picows + json anchor, bench/anchors/raw_picows.py:
the floor the engine is held against).
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .client import BenchClient, close_all, connect_many
from .compare import export
from .servers import APPS, ROOT, Server, migrate, raise_fd_limit, server_env


@dataclass
class CallgrindServer(Server):
    """A server process run under callgrind, counting only between :meth:`count_on` and
    :meth:`dump`."""

    out: str = ""

    def command(self) -> list[str]:
        if self.kind == "picows":  # the raw anchor: picows and json, nothing else
            argv = ["-m", "bench.anchors.raw_picows", "--port", str(self.port)]
        elif self.kind == "engine":
            argv = ["manage.py", "wscommands_engine", "--port", str(self.port)]
        elif self.kind == "daphne":
            endpoint = f"tcp:port={self.port}:interface=127.0.0.1"
            argv = ["-m", "daphne", "-v", "0", "-e", endpoint, APPS[self.app]]
        else:
            argv = ["-m", "uvicorn", "--port", str(self.port), "--log-level", "warning"]
            argv += ["--no-access-log", APPS[self.app]]
        return [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={self.out}",
            sys.executable,
            *argv,
        ]

    def count_on(self) -> None:
        subprocess.run(
            ["callgrind_control", "-i", "on", str(self.pid)], check=True, capture_output=True
        )

    def dump(self) -> int:
        """Write the counts so far; the instructions counted since :meth:`count_on`."""
        subprocess.run(["callgrind_control", "-d", str(self.pid)], check=True, capture_output=True)
        total = 0
        for path in glob.glob(self.out + "*"):
            for line in Path(path).read_text(errors="replace").splitlines():
                if line.startswith(("summary:", "totals:")):
                    total = max(total, int(line.split()[1]))
        return total


async def run_requests(clients: list[BenchClient], per_client: int) -> None:
    async def one(client: BenchClient) -> None:
        for i in range(per_client):
            reply, _ = await client.request({"echo": {"text": "hello"}, "request_id": i + 1})
            if reply.get("echo") != {"text": "hello"}:
                raise RuntimeError(f"unexpected reply: {reply}")

    await asyncio.gather(*(one(c) for c in clients))


async def measure(
    root: Path, app: str, kind: str, clients: int, requests: int, keep: str | None = None
) -> float:
    with tempfile.TemporaryDirectory(prefix="wscommands-callgrind-") as tmp:
        out = keep or f"{tmp}/callgrind.out"
        db = Path(tmp) / "bench.sqlite3"
        migrate(db)
        env = {**server_env(db, None), "PYTHONHASHSEED": "0"}
        server = CallgrindServer(app, kind, env, root=root, out=out)
        server.spawn()
        try:
            server.wait_ready(timeout=300)
            conns, failures = await connect_many([server.url], clients)
            if failures:
                raise RuntimeError(failures[0])
            await run_requests(conns, 20)  # warm-up: caches, first-call paths
            server.count_on()
            await run_requests(conns, requests // clients)
            total = server.dump()
            await close_all(conns)
        finally:
            server.stop()
    return total / (requests // clients * clients)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("rev", nargs="?", help="serve commit REV's tree instead of this one")
    parser.add_argument(
        "--kind", choices=("uvicorn", "daphne", "engine", "picows"), default="uvicorn"
    )
    parser.add_argument("--app", choices=tuple(APPS), default="wscommands")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--keep", help="write callgrind's files as KEEP.* (callgrind_annotate)")
    args = parser.parse_args()
    raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="wscommands-tree-") as tmp:
        root = export(args.rev, Path(tmp)) if args.rev else ROOT
        per_request = asyncio.run(
            measure(root, args.app, args.kind, args.clients, args.requests, args.keep)
        )
    tree = args.rev or "this tree"
    where = f"{args.app} ({tree}) on {args.kind}, {args.clients} connections"
    print(f"{where}: {per_request:,.0f} instructions per request")


if __name__ == "__main__":
    main()
