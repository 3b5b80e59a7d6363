"""Turning the figures into docs/benchmarks.md (tables, targets) and docs/benchmarks.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import engine_report
from .anchors import report as anchors
from .cluster import UVICORN
from .engine_report import ANCHOR_LABELS
from .latency_report import sections as latency_sections
from .replay import section as replay_section
from .stats import median_ratio, ratio

WS, BASE = "wscommands", "baseline"


def _f(value: Any, digits: int = 1) -> str:
    if value is None or value != value:  # None or NaN
        return "n/a"
    if isinstance(value, float) and abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"


def _yes(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "**not met**")


def _replies_row(label: str, m: dict) -> str:
    """A row of a ``| label | replies/s | p50 ms | p99 ms | server CPU | replies per CPU-s |``
    table, from one set of median figures."""
    return (
        f"| {label} | {_f(m['replies_per_s'], 0)} | {_f(m['p50_ms'], 2)} "
        f"| {_f(m['p99_ms'], 2)} | {_f(m['server_cpu'], 2)} "
        f"| {_f(m['replies_per_cpu_s'], 0)} |"
    )


def _throughput_target(
    name: str, m: dict, base: dict, floor: float, digits: int = 3
) -> tuple[str, str, bool]:
    """The target that ``m`` answers at least ``floor`` times ``base``'s replies per second."""
    speed = ratio(m["replies_per_s"], base["replies_per_s"])
    work = ratio(m["replies_per_cpu_s"], base["replies_per_cpu_s"])
    figures = f"{speed:.{digits}f}x replies/s, {work:.{digits}f}x replies per CPU-s"
    return name, figures, speed >= floor


def _echo_row(server: str, app: str, figures: dict, base: dict) -> str:
    """A row of the echo table; the vs-baseline columns are medians of per-round ratios."""
    m = figures["median"]
    speed = median_ratio(figures["rounds"], base["rounds"], "replies_per_s")
    work = median_ratio(figures["rounds"], base["rounds"], "replies_per_cpu_s")
    return (
        f"| {server} | {app} | {_f(m['replies_per_s'], 0)} | {_f(speed, 2)}x "
        f"| {_f(m['p50_ms'], 2)} | {_f(m['p99_ms'], 2)} "
        f"| {_f(ratio(m['p99_ms'], m['p50_ms']), 2)} "
        f"| {_f(m['client_cpu'], 2)} | {_f(m['server_cpu'], 2)} "
        f"| {_f(m['replies_per_cpu_s'], 0)} | {_f(work, 2)}x |"
    )


def _echo(echo: dict, targets: list, anchored: dict | None = None) -> list[str]:
    lines = [
        "## Echo round trip",
        "",
        'Closed loop on 50 connections: each sends `{"echo": {"text": "hello"}, '
        '"request_id": n}` and the next one when the reply is in. Server pinned to core 0, '
        "load generator (picows) to core 1. CPU columns: share of one core used during the "
        "rounds (a client well below 1.0 is not the bottleneck; a server well below 1.0 was "
        "kept waiting by other processes on its core). Replies per server CPU-second measure "
        "the work per request, and stay comparable when the machine is busy. Ratios: the "
        "median of the per-round ratios (the servers of a kind take turns round by round). "
        "The engine's rows are measured against the raw picows anchor "
        "(`bench/anchors/raw_picows.py`: picows with `json.loads`/`json.dumps` and nothing "
        "else) in the same interleaved rounds: its vs columns are against that anchor.",
        "",
        "| server | app | replies/s | vs baseline | p50 ms | p99 ms | p99/p50 | client CPU "
        "| server CPU | replies per CPU-s | vs baseline |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, apps in echo.items():
        # A kind without the baseline app (the engine) is measured against its anchor.
        anchor = BASE if BASE in apps else next(app for app in apps if app != WS)
        base = apps[anchor]["median"]
        for app in apps:  # wscommands, the baseline, then the anchors (under uvicorn)
            server, label = anchors.echo_label(kind, app)
            label = ANCHOR_LABELS.get(label, label)
            lines.append(_echo_row(server, label, apps[app], apps[anchor]))
        ws = apps[WS]["median"]
        if anchor != BASE:
            label = ANCHOR_LABELS.get(anchor, anchor)
            targets.append(engine_report.echo_target(kind, label, apps[WS], apps[anchor]))
        else:
            # Issue 20: daphne at least 1.5x bare Channels on daphne (uvicorn's bar is
            # python-socketio, in the anchors' section).
            least = 1.5 if kind == "daphne" else 0.9
            targets.append(
                _throughput_target(
                    f"round trip {kind}: >= {least}x baseline", ws, base, least, digits=2
                )
            )
        tail = ratio(ws["p99_ms"], ws["p50_ms"])
        targets.append((f"round trip {kind}: p99 <= 2x p50", f"{tail:.2f}x", tail <= 2))
    if anchored is not None:
        lines += ["", *anchors.echo_section(echo, anchored, targets)]
    return [*lines, ""]


def _typed(typed: dict, targets: list) -> list[str]:
    lines = [
        "## Typed arguments: a msgspec Struct against a plain argument (daphne)",
        "",
        "The same wscommands server and 50 connections, rounds alternating between "
        '`{"echo": {"text": "hello"}}` (`text: str`) and `{"echo.typed": {"message": '
        '{"text": "hello"}}}` (`message: Text`, a `msgspec.Struct`, returned as the result).',
        "",
        "| command | replies/s | p50 ms | p99 ms | server CPU | replies per CPU-s |",
        "|---|---|---|---|---|---|",
    ]
    commands = typed["commands"]
    lines += [
        _replies_row(f"`{command}`", figures["median"]) for command, figures in commands.items()
    ]
    plain, struct = commands["echo"]["median"], commands["echo.typed"]["median"]
    targets.append(
        _throughput_target(
            "typed Struct echo: at most 5% fewer replies/s than echo", struct, plain, 0.95
        )
    )
    return [*lines, ""]


def _broadcast(
    bc: dict, targets: list, plot: str | None, layer: str, anchored: dict | None = None
) -> list[str]:
    sizes = sorted(bc[WS])
    lines = [
        "## Broadcast to every client, two daphne processes, Redis",
        "",
        "Time from the sender's `group_send` until the last client has the frame (median of "
        "the rounds' medians), and Redis commands per broadcast (from `INFO commandstats` "
        "deltas, minus the background rate (read over 3 s with every app's clients "
        "connected, before the rounds of each client count) times the round's span; "
        "median, and in brackets "
        "the fewest a round saw: the counters are server-wide and others' traffic only adds "
        "to them; the commands a Lua script runs count one each: wscommands' broadcast is "
        "two round trips, the history script, about 11 commands, and one `PUBLISH`). "
        "wscommands: `wscommands.broadcast()`; baseline: one `group_add` per consumer and a "
        "`group_send` "
        f"to that group. Channel layer of both (the example project's settings): `{layer}`. "
        "CPU: per broadcast, both server "
        "processes together, and the load generator (which shares the two cores). "
        "wscommands on two uvicorn processes, measured in the same rounds, is in the next "
        "table.",
        "",
        "| clients | wscommands ms | baseline ms | speed-up | wscommands Redis cmds "
        "| baseline Redis cmds | wscommands server CPU ms | baseline server CPU ms "
        "| client CPU ms (ws/base) | missed (ws/base) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size in sizes:
        ws, base = bc[WS][size], bc[BASE][size]
        lines.append(
            f"| {size} | {_f(ws['median']['ms_to_last'])} | {_f(base['median']['ms_to_last'])} "
            f"| {_f(ratio(base['median']['ms_to_last'], ws['median']['ms_to_last']))}x "
            f"| {_f(ws['median']['redis_commands'])} ({_f(ws['min_redis_commands'])}) "
            f"| {_f(base['median']['redis_commands'])} ({_f(base['min_redis_commands'])}) "
            f"| {_f(ws['median']['server_cpu_ms'])} | {_f(base['median']['server_cpu_ms'])} "
            f"| {_f(ws['median']['client_cpu_ms'])}/{_f(base['median']['client_cpu_ms'])} "
            f"| {ws['missed']}/{base['missed']} |"
        )
    for size, limit in ((1000, 50), (3000, 150)):
        if size in bc[WS]:
            ms = bc[WS][size]["median"]["ms_to_last"]
            targets.append((f"broadcast to {size}: <= {limit} ms", f"{ms:.1f} ms", ms <= limit))
    cmds = [bc[WS][s]["min_redis_commands"] for s in sizes]
    flat = max(cmds) - min(cmds) <= max(2.0, 0.2 * min(cmds))
    targets.append(
        (
            "Redis commands per broadcast flat in clients (fewest in a round)",
            " / ".join(f"{c:.1f}" for c in cmds),
            flat,
        )
    )
    if plot:
        lines += ["", f"![broadcast time against clients]({plot})"]
    if anchored is not None:
        lines += ["", *anchors.broadcast_section(bc, anchored)]
    return [*lines, ""]


def _memory(mem: dict, targets: list) -> list[str]:
    lines = [
        "## Idle memory per connection (daphne)",
        "",
        "RSS of a fresh server after a warm-up, then with N open connections that have each "
        "made one request.",
        "",
        "| app | RSS at 0 (MB) | RSS at N (MB) | KB per connection | vs baseline |",
        "|---|---|---|---|---|",
    ]
    base = mem[BASE]["median"]["kb_per_connection"]
    for app in (WS, BASE):
        m = mem[app]["median"]
        lines.append(
            f"| {app} | {_f(m['rss_0_mb'])} | {_f(m['rss_n_mb'])} | {_f(m['kb_per_connection'])} "
            f"| {_f(ratio(m['kb_per_connection'], base), 2)}x |"
        )
    r = ratio(mem[WS]["median"]["kb_per_connection"], base)
    targets.append(("idle memory <= 1.1x baseline", f"{r:.2f}x", r <= 1.1))
    return [*lines, ""]


def _slow(slow: dict, targets: list) -> list[str]:
    lines = [
        "## A slow sync command on another connection (daphne)",
        "",
        "One connection runs the example project's `sleep` (a sync command, `time.sleep`); "
        "another sends `square` (also sync) back to back meanwhile. Added = latency during "
        "the sleep minus the idle median. The baseline runs both through Channels' "
        "`database_sync_to_async`.",
        "",
        "| app | idle p50 ms | during p50 ms | during max ms | added p50 ms | added max ms |",
        "|---|---|---|---|---|---|",
    ]
    for app in (WS, BASE):
        m = slow[app]["median"]
        lines.append(
            f"| {app} | {_f(m['idle_p50_ms'], 2)} | {_f(m['during_p50_ms'], 2)} "
            f"| {_f(m['during_max_ms'], 2)} | {_f(m['added_p50_ms'], 2)} "
            f"| {_f(m['added_max_ms'], 2)} |"
        )
    added = slow[WS]["median"]["added_p50_ms"]
    targets.append(("slow sync command adds <= 10 ms (p50)", f"{added:.2f} ms", added <= 10))
    return [*lines, ""]


def _burst(burst: dict, targets: list) -> list[str]:
    lines = [
        "## Connection burst over two daphne processes (Redis)",
        "",
        "Handshakes in batches, spread over both processes; each connection then answers one "
        "echo request. Failed = handshake or request failed.",
        "",
        "| app | rounds | connected (per round) | failed (all rounds) | seconds (median) |",
        "|---|---|---|---|---|",
    ]
    for app in (WS, BASE):
        b = burst[app]
        connected = "/".join(str(x["connected"]) for x in b["rounds"])
        lines.append(
            f"| {app} | {len(b['rounds'])} | {connected} | {b['failed']} "
            f"| {_f(b['median']['seconds'], 2)} |"
        )
    failed = burst[WS]["failed"]
    targets.append(("burst: every connection succeeds", f"{failed} failed", failed == 0))
    return [*lines, ""]


def _fanout(fanout: dict, targets: list) -> list[str]:
    lines = [
        "## Fan-out with stream history, daphne, uvicorn and the engine (two processes, Redis)",
        "",
        "A broadcast to N plain clients spread over two processes; variants run one after "
        "the other. First / last = ms until the first / the last client had it (median).",
        "",
        "| variant | clients | first (ms) | last (ms) | Redis commands per broadcast (fewest) "
        "| missed |",
        "|---|---|---|---|---|---|",
    ]
    for variant, sizes in fanout.items():
        for size, f in sizes.items():
            m = f["median"]
            lines.append(
                f"| {variant} | {size} | {_f(m['ms_to_first'])} | {_f(m['ms_to_last'])} "
                f"| {_f(f['min_redis_commands'])} | {f['missed']} |"
            )
    on, off = fanout.get("daphne, history on"), fanout.get("daphne, history off")
    if on and off:
        for size in on:
            a, b = on[size]["median"]["ms_to_last"], off[size]["median"]["ms_to_last"]
            if a and b:
                targets.append(
                    (
                        f"history on vs off, {size} clients: at most 15% slower",
                        f"{a / b:.2f}x",
                        a <= b * 1.15,
                    )
                )
    for variant, sizes in fanout.items():
        if "history on" not in variant:
            continue
        for size, f in sizes.items():
            first = f["median"]["ms_to_first"]
            targets.append(
                (
                    f"{variant}, {size} clients: first receiver within 10 ms",
                    f"{_f(first)} ms",
                    first is not None and first <= 10,
                )
            )
    return [*lines, ""]


def _resume(resume: dict, targets: list) -> list[str]:
    ms = resume["median"]["ms"]
    rounds = ", ".join(
        f"{_f(r['ms'])} ms ({r['replayed']} replayed, recovered {r['recovered']})"
        for r in resume["rounds"]
    )
    targets.append(
        (f"resume {resume['missed']} missed pushes under 100 ms", f"{_f(ms)} ms", ms < 100)
    )
    return [
        "## Resume after missed pushes (one daphne process, Redis history)",
        "",
        f"A `?resume=1` client misses {resume['missed']} broadcasts, reconnects and sends "
        "`wscommands.resume`: time from the request to its reply (the replay comes first).",
        "",
        f"- median: {_f(ms)} ms; rounds: {rounds}",
        "",
    ]


NOTES = [
    "## How to read this",
    "",
    "- Both apps run with `bench/settings.py`: the example project's settings with the "
    "per-connection rate limit lifted (a closed-loop client would be throttled) and presence "
    "events off (the library default; the demo turns them on, and then every handshake is "
    "also a broadcast; the two latency scenarios turn them on). Presence itself is tracked.",
    "- The machine is shared with other work: a server CPU share well below 1.0 in the echo "
    "table means it waited for the core. Replies per CPU-second and CPU per broadcast are "
    "the figures that stay comparable between runs; times and rates move with the load "
    "average printed above.",
    "- Under daphne most of the cost of a frame is daphne's own (autobahn framing, and a "
    "Twisted write that registers and unregisters the socket with the event loop for each "
    "frame): roughly 50 µs of CPU per delivered frame. A broadcast to 1500 connections of "
    "one process cannot take less than that times 1500, whatever the framework does; "
    "wscommands adds one channel-layer message per process and a loop over its local "
    "connections, where a Channels group adds a layer message and a consumer dispatch per "
    "connection.",
    "- The load generator (picows, callbacks, no task per message) runs in one process; its "
    "CPU per broadcast is in the table. In the broadcast scenario it shares the two cores "
    "with the servers and Redis, so it adds to the time to the last client.",
    "",
]


def _metrics(apps: dict, targets: list) -> list[str]:
    on, off = apps["metrics on"]["median"], apps["metrics off"]["median"]
    lines = [
        "## Echo with metrics on and off",
        "",
        "The echo round trip above, on two wscommands daphne processes of the same run: one "
        'recording Prometheus metrics (the default), one with `WSCOMMANDS["METRICS"] = False`, '
        "in interleaved rounds on the same core.",
        "",
        "| metrics | replies/s | p50 ms | p99 ms | server CPU | replies per CPU-s |",
        "|---|---|---|---|---|---|",
    ]
    lines += [_replies_row("on", on), _replies_row("off", off)]
    targets.append(
        _throughput_target(
            "echo with metrics: at most 5% fewer replies/s than without", on, off, 0.95
        )
    )
    return [*lines, ""]


def write_markdown(results: dict, path: Path, plot: str | None) -> None:
    """Write the whole report: how it was made, one table per scenario, the targets."""
    m = results["machine"]
    figures = results["results"]
    targets: list[tuple[str, str, bool]] = []
    body: list[str] = []
    if "echo" in figures:
        body += _echo(figures["echo"], targets, figures.get("anchors"))
    if "typed" in figures:
        body += _typed(figures["typed"], targets)
    if "broadcast" in figures:
        layer = figures.get("channel_layer", "?")
        body += _broadcast(figures["broadcast"], targets, plot, layer, figures.get("anchors"))
    if "broadcast_engine" in figures:
        body += engine_report.broadcast(figures["broadcast_engine"], targets)
    if "idle" in figures:
        body += engine_report.idle(figures["idle"], targets)
    if "memory" in figures:
        body += _memory(figures["memory"], targets)
    if "slow" in figures:
        body += _slow(figures["slow"], targets)
    if "burst" in figures:
        body += _burst(figures["burst"], targets)
    if "metrics" in figures:
        body += _metrics(figures["metrics"], targets)
    if "fanout" in figures:
        body += _fanout(figures["fanout"], targets)
    if "resume" in figures:
        body += _resume(figures["resume"], targets)
    body += latency_sections(figures, targets)
    if "replay-flood" in figures:
        body += replay_section(figures["replay-flood"], targets)
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    head = [
        "# Benchmarks",
        "",
        "<!-- Generated by bench/ (`make bench`): do not edit by hand. -->",
        "",
        "wscommands (the example project, `project.asgi`) against a bare Channels "
        "`AsyncJsonWebsocketConsumer` (`bench/baseline_asgi.py`) served by the same server "
        "with the same settings, in the same run, in interleaved rounds; figures are "
        "medians over rounds. The echo and broadcast scenarios also measure python-socketio "
        "and Node.js Socket.IO (`bench/anchors/`) in the same rounds. The machine is shared "
        "(2 cores): read ratios rather than absolute numbers.",
        "",
        f"- command: `{results['command']}` (mode: {results['mode']})",
        f"- date: {m['date']}, commit {m['commit']}",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['system']}, Python {m['python']}",
        f"- packages: {packages}",
        f"- load average (1, 5, 15 min): {m['load']}",
        "",
        "## Targets",
        "",
        "| target | measured | |",
        "|---|---|---|",
        *(f"| {name} | {value} | {_yes(ok)} |" for name, value, ok in targets),
        "",
    ]
    path.write_text("\n".join(head + body + NOTES).rstrip() + "\n")


def write_plot(broadcast: dict, path: Path) -> str | None:
    """Plot time-to-last-client against clients; returns the file name (None without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    labels = {
        WS: "wscommands (2 daphne, Redis)",
        UVICORN: "wscommands (2 uvicorn, Redis)",
        BASE: "Channels group (bare consumer, 2 daphne)",
        **anchors.PLOT_NAMES,
    }
    styles = {WS: "o-", UVICORN: "o-.", BASE: "s--", **anchors.PLOT_STYLES}
    for app, style in styles.items():
        if app not in broadcast:  # an anchor not installed
            continue
        sizes = sorted(broadcast[app])
        ms = [broadcast[app][s]["median"]["ms_to_last"] for s in sizes]
        ax.plot(sizes, ms, style, label=labels[app], linewidth=2)
    ax.plot([1000, 3000], [50, 150], "k+", markersize=12, mew=2, label="target (at most)")
    ax.set_xlabel("connected clients (two server processes and Redis; Node.js: one process)")
    ax.set_ylabel("ms until the last client has the broadcast")
    anchored = " and Socket.IO" if set(anchors.PLOT_NAMES) & set(broadcast) else ""
    ax.set_title(f"Broadcast to every client: wscommands vs a Channels group{anchored}")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path.name
