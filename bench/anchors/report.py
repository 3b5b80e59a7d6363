"""The anchors' part of docs/benchmarks.md: their rows, the ratios against them, the target.

Every ratio here is the median of the per-round ratios: the anchors run in the same
interleaved rounds as wscommands, so each round's pair saw the same machine load.
"""

from __future__ import annotations

from typing import Any

from ..cluster import UVICORN, UVICORN_PREFIX
from ..stats import median_ratio, round_ratios
from .servers import NODE, PYTHON

WS = "wscommands"
#: The echo target: wscommands under uvicorn against python-socketio under uvicorn.
ECHO_FLOOR = 1.5
ECHO_NAMES = {PYTHON: "python-socketio, uvicorn", NODE: "Node.js Socket.IO 4"}
BROADCAST_NAMES = {
    WS: "wscommands, 2 daphne + Redis",
    UVICORN: "wscommands, 2 uvicorn + Redis",
    PYTHON: "python-socketio, 2 uvicorn + Redis",
    NODE: "Node.js Socket.IO, one process",
}
#: Their lines in docs/benchmarks.png (the broadcast plot).
PLOT_NAMES = {PYTHON: "python-socketio (2 uvicorn, Redis)", NODE: "Node.js Socket.IO (one process)"}
PLOT_STYLES = {PYTHON: "^:", NODE: "d-."}
Target = tuple[str, str, bool | None]


def _f(value: float | None, digits: int = 1) -> str:
    if value is None or value != value:  # None or NaN
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.{digits}f}"


def echo_label(kind: str, app: str) -> tuple[str, str]:
    """The (server, app) cells of an echo row: the anchors name their own server."""
    if app == PYTHON:
        return "uvicorn", "python-socketio (anchor)"
    if app == NODE:
        return "Node.js", "Socket.IO 4 (anchor)"
    return kind, app


def _versions(anchors: dict[str, Any]) -> str:
    v = anchors.get("versions", {})
    return (
        f"python-socketio {v.get('python-socketio', '?')} (python-engineio "
        f"{v.get('python-engineio', '?')}) under uvicorn; Node.js {v.get('node', '?')} with "
        f"socket.io {v.get('socket.io', '?')}"
    )


def _not_run(anchors: dict[str, Any], names: dict[str, str]) -> list[str]:
    """A list of the anchors not installed and what to install (after a blank line: a table
    above it must end first)."""
    why = anchors.get("missing", {})
    return ["", *(f"- {names[app]}: not run ({text})" for app, text in why.items())] if why else []


def echo_section(echo: dict[str, Any], anchors: dict[str, Any], targets: list[Target]) -> list[str]:
    """Below the echo table: wscommands (uvicorn) against each anchor, and the target."""
    apps = echo.get("uvicorn", {})
    present = [app for app in (PYTHON, NODE) if app in apps]
    lines = [
        "Socket.IO anchors, in the same rounds as the uvicorn rows, server on core 0: "
        f"{_versions(anchors)}. The load generator speaks Socket.IO over the WebSocket "
        "transport (no polling); an echo is an event with an acknowledgement, "
        '`42<id>["echo",{"text":"hello"}]` answered by `43<id>[{"text":"hello"}]`. '
        "wscommands under uvicorn against each (median of the per-round ratios):",
        "",
        "| wscommands (uvicorn) against | replies/s | replies per CPU-s | replies/s per round |",
        "|---|---|---|---|",
    ]
    for app in present:
        ws, other = apps[WS]["rounds"], apps[app]["rounds"]
        per_round = " / ".join(f"{r:.2f}" for r in round_ratios(ws, other, "replies_per_s"))
        lines.append(
            f"| {ECHO_NAMES[app]} | {_f(median_ratio(ws, other, 'replies_per_s'), 2)}x "
            f"| {_f(median_ratio(ws, other, 'replies_per_cpu_s'), 2)}x | {per_round} |"
        )
    lines += _not_run(anchors, ECHO_NAMES)
    name = f"echo uvicorn: >= {ECHO_FLOOR}x python-socketio"
    if PYTHON in apps:
        ws, other = apps[WS]["rounds"], apps[PYTHON]["rounds"]
        speed = median_ratio(ws, other, "replies_per_s")
        work = median_ratio(ws, other, "replies_per_cpu_s")
        figures = f"{speed:.2f}x replies/s, {work:.2f}x replies per CPU-s (per-round medians)"
        targets.append((name, figures, speed >= ECHO_FLOOR))
    else:
        why = anchors.get("missing", {}).get(PYTHON, "not in this run")
        targets.append((name, f"not run: {why}", None))
    return [*lines, ""]


def _last_vs(entry: dict[str, Any], pair: dict[str, Any] | None) -> str:
    """The time to the last receiver against a wscommands pair's (median of the per-round
    ratios), as a cell."""
    versus = median_ratio(entry["rounds"], pair["rounds"], "ms_to_last") if pair else None
    return "n/a" if versus is None or versus != versus else f"{versus:.2f}x"


def broadcast_section(bc: dict[str, Any], anchors: dict[str, Any]) -> list[str]:
    """Below the broadcast table: wscommands on daphne and on uvicorn, and the anchors, first
    and last receiver, the time to the last against each wscommands pair."""
    present = [app for app in (WS, UVICORN, PYTHON, NODE) if app in bc]
    lines = [
        "### Against Socket.IO",
        "",
        "wscommands on two uvicorn processes, one per core, and the anchors in the same "
        f"interleaved rounds as the daphne pair ({_versions(anchors)}). The uvicorn pair "
        'shares Redis and the channel layer with the daphne pair under a `WSCOMMANDS["PREFIX"]` '
        f"of its own (`{UVICORN_PREFIX}`): its own channel-layer groups and stream history, "
        "so neither pair receives the other's broadcasts (a Redis database of its own would "
        "not do: pub/sub channels are shared by every database). The benchmark broadcasts "
        "to each pair with that pair's settings, switched before each of its rounds, and its "
        "Redis connection is opened before the round is measured, for both pairs alike. "
        "python-socketio: "
        "two processes, one per core, sharing Redis through `AsyncRedisManager`; the "
        "benchmark emits through a write-only `AsyncRedisManager` (python-socketio's way to "
        "emit from outside a server: one publish). Node.js: one process on core 0, no "
        "broker; a trigger connection sends a `broadcast` event and the server `io.emit`s. "
        "First / last: ms until the first / the last receiver has the frame (median); "
        "last vs daphne / uvicorn: the time to the last against wscommands' daphne / uvicorn "
        "pair, the median of the per-round ratios (above 1: slower than that pair).",
        "",
        "| server | clients | first ms | last ms | last vs daphne | last vs uvicorn "
        "| server CPU ms | Redis cmds | missed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size in sorted(bc.get(WS, {})):
        for app in present:
            entry = bc[app].get(size)
            if entry is None:
                continue
            m = entry["median"]
            versus = [_last_vs(entry, bc.get(pair, {}).get(size)) for pair in (WS, UVICORN)]
            lines.append(
                f"| {BROADCAST_NAMES[app]} | {size} | {_f(m['ms_to_first'])} "
                f"| {_f(m['ms_to_last'])} | {' | '.join(versus)} | {_f(m['server_cpu_ms'])} "
                f"| {_f(m['redis_commands'])} | {entry['missed']} |"
            )
    lines += _not_run(anchors, BROADCAST_NAMES)
    return [*lines, ""]
