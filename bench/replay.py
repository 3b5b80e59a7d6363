"""The replay-flood scenario (issue 18): a bystander's echo on one daphne, idle and while one
anonymous socket asks 108 times for the same 500 pushes (:func:`bench.attacks.replay_flood`,
in a process of its own so that the attacker's work does not slow the bystander's loop)."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from . import attacks

#: The attack's name in :data:`bench.attacks.ATTACKS`.
ATTACK = "replay flood (108 resumes of 500 pushes)"
#: The bystander's idle measurement, in seconds.
IDLE_SECONDS = 2.0


async def replay_flood() -> dict[str, Any]:
    """The bystander's echo p50 (ms) idle and during the flood, and what the flood got back."""
    with tempfile.TemporaryDirectory(prefix="wscommands-replay-") as workdir:
        server = attacks.start_daphne(Path(workdir))
        try:
            async with connect(server.url) as bystander:
                idle = await attacks.echo_latencies(bystander, attacks.set_after(IDLE_SECONDS))
                stop = asyncio.Event()
                during = asyncio.ensure_future(attacks.echo_latencies(bystander, stop))
                note = await attacks.run_attacker(ATTACK, server.url)
                stop.set()
                busy = await during
        finally:
            server.stop()
    return {
        "idle_p50_ms": statistics.median(idle),
        "during_p50_ms": statistics.median(busy) if busy else None,
        "during_max_ms": max(busy) if busy else None,
        "samples": len(busy),
        "attack": note,
    }


def section(figures: dict[str, Any], targets: list[tuple[str, str, bool]]) -> list[str]:
    """The replay-flood section of docs/benchmarks.md; its target: the bystander's p50 during
    the flood within 2x its idle p50 + 5 ms."""
    idle, during = figures["idle_p50_ms"], figures["during_p50_ms"]
    bound = 2 * idle + 5
    ok = during is not None and during <= bound
    shown = "n/a" if during is None else f"{during:.1f} ms"
    targets.append(
        ("replay flood: bystander echo p50 <= 2x idle + 5 ms", f"{shown} (bound {bound:.1f})", ok)
    )
    worst = "n/a" if figures["during_max_ms"] is None else f"{figures['during_max_ms']:.0f}"
    return [
        "## Replay flood, one daphne",
        "",
        "500 broadcasts go into the `all` stream's history; then one anonymous socket sends "
        "`wscommands.resume` of `all` at the current offset - 499, 108 times (each push is "
        "sent to it once; later asks cost nothing, docs/protocol.md). A bystander on the same "
        "process echoes every 20 ms, first idle, then during the flood "
        "(`python -m bench.attacks replay` prints the same with the server's memory).",
        "",
        "| bystander echo p50 idle | p50 during | max during | samples | the flood got |",
        "|---|---|---|---|---|",
        f"| {idle:.1f} ms | {shown} | {worst} ms | {figures['samples']} | {figures['attack']} |",
        "",
    ]
