"""``python -m bench.compare REV``: the echo round trip of this tree against commit REV.

Exports REV with ``git archive`` into a temporary directory and serves the example project of
both trees (each with its own ``bench/settings.py``) on the same kind of server, pinned to
the same core, with the same load generator on the other core; closed-loop echo rounds
alternate between the two. Prints replies per second and replies per server CPU-second (the
work per request: the figure that stays comparable when the machine is busy), the medians of
the rounds. Figures in docs/architecture.md, "What the layers cost".
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

from .client import close_all, connect_many
from .servers import ROOT, Server, migrate, pin, raise_fd_limit, server_env, start_all, stop_all
from .single import echo_round
from .stats import interleaved, median_of

SERVER_CORE, CLIENT_CORE = 0, 1


def export(rev: str, into: Path) -> Path:
    """The tree of commit ``rev``, written under ``into``."""
    archive = subprocess.run(
        ["git", "archive", rev], cwd=ROOT, check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


async def compare(
    rev: str, kind: str, rounds: int, seconds: float, clients: int, settings: str | None = None
) -> str:
    with tempfile.TemporaryDirectory(prefix="wscommands-compare-") as tmp:
        old_root = export(rev, Path(tmp) / "old")
        db = Path(tmp) / "bench.sqlite3"
        migrate(db)
        env = server_env(db, None)
        trees = {"this tree": ROOT, rev: old_root}
        # Settings for this tree only (an older tree may not know them).
        this_env = {**env, "WSCOMMANDS_LIMITS": settings} if settings else env
        servers = {
            name: Server(
                "wscommands", kind, this_env if root == ROOT else env, {SERVER_CORE}, root=root
            )
            for name, root in trees.items()
        }
        start_all(list(servers.values()))
        pin({CLIENT_CORE})
        figures: dict[str, list[dict]] = {name: [] for name in trees}
        try:
            conns = {}
            for name, server in servers.items():
                conns[name], failures = await connect_many([server.url], clients)
                if failures:
                    raise RuntimeError(f"{name}: {failures[0]}")
                await echo_round(conns[name], 0.5, server)  # warm-up, not recorded
            for _r, name in interleaved(rounds, list(trees)):
                figures[name].append(await echo_round(conns[name], seconds, servers[name]))
            for name in trees:
                await close_all(conns[name])
        finally:
            stop_all(list(servers.values()))
    rows = [
        f"Echo on {kind}, {clients} connections, {rounds} rounds of {seconds} s (medians)"
        + (f"; this tree with WSCOMMANDS {settings}" if settings else "")
        + ":",
        "",
        "| tree | replies/s | replies per server CPU-s | vs " + rev + " |",
        "|---|---|---|---|",
    ]
    base = median_of(figures[rev], "replies_per_cpu_s")
    for name in trees:
        rate = median_of(figures[name], "replies_per_s")
        per_cpu = median_of(figures[name], "replies_per_cpu_s")
        rows.append(f"| {name} | {rate:,.0f} | {per_cpu:,.0f} | {per_cpu / base:.2f}x |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.add_argument("rev", help="the commit to compare against (e.g. 3af5025)")
    parser.add_argument("--kind", choices=("uvicorn", "daphne"), default="uvicorn")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument(
        "--settings",
        help="WSCOMMANDS overrides for this tree only, as JSON (e.g. '{\"METRICS\": false}')",
    )
    args = parser.parse_args()
    raise_fd_limit()
    figures = compare(args.rev, args.kind, args.rounds, args.seconds, args.clients, args.settings)
    print(asyncio.run(figures))


if __name__ == "__main__":
    main()
