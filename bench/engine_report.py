"""The report's parts for the engine: its echo target against the raw picows anchor, the
broadcast table against that anchor's floor, and the idle-connections scenario."""

from __future__ import annotations

from typing import Any

from .stats import median_ratio, ratio

#: How the anchors' rows are labelled in the tables.
ANCHOR_LABELS = {"raw picows": "raw picows + json"}
WS, RAW = "wscommands", "raw picows"
#: The engine's targets (issue 20): echo against raw picows, broadcast against its floor.
ECHO_FLOOR, BROADCAST_CEILING, FIRST_MS, CONNECT_RATIO = 0.5, 2.0, 5.0, 1.5


def _n(value: Any, digits: int = 1) -> str:
    if value is None or value != value:  # None or NaN
        return "n/a"
    return f"{value:,.{digits}f}"


def echo_target(kind: str, label: str, ws: dict, anchor: dict) -> tuple[str, str, bool]:
    """The engine's echo answers at least :data:`ECHO_FLOOR` times the anchor's replies/s
    (medians of the per-round ratios, as the echo table's columns)."""
    speed = median_ratio(ws["rounds"], anchor["rounds"], "replies_per_s")
    work = median_ratio(ws["rounds"], anchor["rounds"], "replies_per_cpu_s")
    return (
        f"round trip {kind}: >= {ECHO_FLOOR}x {label}",
        f"{speed:.2f}x replies/s, {work:.2f}x replies per CPU-s",
        speed >= ECHO_FLOOR,
    )


def broadcast(bc: dict, targets: list) -> list[str]:
    """The engine (two processes, Redis) against the raw picows floor (one process)."""
    lines = [
        "### The engine against the raw picows floor",
        "",
        "The same broadcast, in rounds of their own (the engine's processes would receive "
        "the daphne pair's `wscommands.broadcast()` too: they share its channel layer and "
        "prefix), "
        "interleaved with each other: two engine processes sharing Redis "
        "(`wscommands.broadcast()`, one channel-layer message per process, the text framed "
        "once and written to each socket), and one raw picows process (a control connection "
        "sends it the message; it encodes it once with `json.dumps` and calls "
        "`WSTransport.send` for every connection: no Redis, the floor). vs floor = "
        "engine / raw picows, time to the last client. As in the issue's method and the echo "
        "scenario, every server process of these rounds is pinned to core 0 (the two engine "
        "processes share it) and the load generator to core 1 (Redis floats): a load "
        "generator floating over both cores while two busy servers hold them waits for a "
        "core, and the first receiver then measured the scheduler (4-6 ms here) rather than "
        "the server (about 2 ms). The load generator is one process (client CPU ms per "
        "broadcast): where it spends about as long as the last client waits, it is what the "
        "time to the last client measures, for both.",
        "",
        "| clients | server | first (ms) | last (ms) | vs floor | server CPU ms "
        "| client CPU ms | Redis cmds (fewest) | missed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    floor = bc.get(RAW, {})
    for size in sorted(bc.get(WS, {})):
        for app in (WS, RAW):
            if size not in bc.get(app, {}):
                continue
            entry, m = bc[app][size], bc[app][size]["median"]
            base = floor.get(size, {}).get("median", {}).get("ms_to_last")
            label = "engine, 2 processes + Redis" if app == WS else "raw picows + json, 1 process"
            lines.append(
                f"| {size} | {label} | {_n(m['ms_to_first'])} | {_n(m['ms_to_last'])} "
                f"| {_n(ratio(m['ms_to_last'], base), 2)}x | {_n(m['server_cpu_ms'])} "
                f"| {_n(m['client_cpu_ms'])} | {_n(entry['min_redis_commands'])} "
                f"| {entry['missed']} |"
            )
    biggest = max(bc.get(WS, {}), default=None)
    if biggest is not None and biggest in floor:
        m = bc[WS][biggest]["median"]
        r = ratio(m["ms_to_last"], floor[biggest]["median"]["ms_to_last"])
        targets.append(
            (
                f"engine broadcast to {biggest} (2 processes, Redis): "
                f"<= {BROADCAST_CEILING}x the raw picows floor",
                f"{r:.2f}x ({_n(m['ms_to_last'])} ms)",
                r <= BROADCAST_CEILING,
            )
        )
        first = m["ms_to_first"]
        targets.append(
            (
                f"engine broadcast to {biggest}: first receiver within {FIRST_MS:g} ms",
                f"{_n(first)} ms",
                first is not None and first <= FIRST_MS,
            )
        )
    return [*lines, ""]


def idle(figures: dict, targets: list) -> list[str]:
    """Idle connections held by one engine process: connect time as they grow, RSS."""
    asked, measured = figures["asked"], figures["measured"]
    lines = [
        "## Idle connections on one engine process",
        "",
        f"Idle WebSocket connections opened to one engine process from the source "
        f"addresses {', '.join(figures['sources'])}, one load-generator process each. At "
        "each count, "
        f"{figures['probes']} more connections are opened one at a time and timed (the "
        "handshake's 101 received), then closed: connect p50 and p90. RSS per connection: "
        "the server's RSS growth from its warmed-up start, over the connections held.",
        "",
    ]
    if figures.get("clamped"):
        lines += [f"- {_n(asked, 0)} asked, {_n(measured, 0)} measured: {figures['clamped']}", ""]
    lines += [
        "| open connections | connect p50 ms | connect p90 ms | server RSS (MB) "
        "| KB per connection |",
        "|---|---|---|---|---|",
    ]
    for point in figures["points"]:
        lines.append(
            f"| {_n(point['open'], 0)} | {_n(point['p50_ms'], 2)} | {_n(point['p90_ms'], 2)} "
            f"| {_n(point['rss_mb'])} | {_n(point['kb_per_connection'])} |"
        )
    lines += [
        "",
        f"- opened {_n(figures['opened'], 0)} in {_n(figures['open_seconds'])} s "
        f"({_n(figures['opened'] / figures['open_seconds'], 0)} per second), "
        f"{figures['failures']} failed; RSS at start {_n(figures['rss_0_mb'])} MB",
        "",
    ]
    first, last = figures["points"][0], figures["points"][-1]
    r = ratio(last["p50_ms"], first["p50_ms"])
    targets.append(
        (
            f"idle: connect p50 at {last['open']:,} <= {CONNECT_RATIO}x at {first['open']:,}",
            f"{r:.2f}x ({_n(last['p50_ms'], 2)} / {_n(first['p50_ms'], 2)} ms)",
            r <= CONNECT_RATIO,
        )
    )
    held = figures["opened"] >= measured and figures["failures"] == 0
    # Clamped: the count asked cannot be measured here (n/a), only the count measured.
    targets.append(
        (
            f"idle: {_n(asked, 0)} connections held by one process",
            f"{_n(figures['opened'], 0)} held, {last['kb_per_connection']:.1f} KB each"
            + (f" ({figures['clamped']})" if figures.get("clamped") else ""),
            (None if held else False) if figures.get("clamped") else held,
        )
    )
    return lines
