"""The sections of docs/benchmarks.md for the latency scenarios (bench/latency.py), and their
lines in the Targets table: kept apart from report.py, which holds the throughput ones."""

from __future__ import annotations

from typing import Any

#: The promises of issue 18 (docs/protocol.md, docs/scaling.md), in milliseconds.
LEAVE_WITHIN_MS = 5000
CLOSE_WITHIN_MS = 1000

Targets = list[tuple[str, str, bool]]


def ms(value: float | None) -> str:
    """Milliseconds as the report writes them (n/a: the round missed the event)."""
    return "n/a" if value is None or value != value else f"{value:,.0f}"


def _rounds(rounds: list[dict[str, Any]]) -> str:
    return ", ".join(ms(r["ms_last"]) for r in rounds)


def _bound(summary: dict[str, Any], within: float) -> tuple[str, bool]:
    """The figure of a target (median and worst round) and whether every round made it."""
    worst = summary["max_ms"]
    figure = f"median {ms(summary['median']['ms_last'])} ms, max {ms(worst)} ms"
    if summary["missed"]:
        figure += f", {summary['missed']} round(s) missed"
    return figure, not summary["missed"] and worst is not None and worst <= within


def crash_leave(figures: dict[str, Any], targets: Targets) -> list[str]:
    """The crash-leave section; its target: every round within :data:`LEAVE_WITHIN_MS`."""
    users, rounds = figures["users"], figures["rounds"]
    figure, ok = _bound(figures, LEAVE_WITHIN_MS)
    name = f"leave after kill -9: {users} users gone from presence within 5 s"
    targets.append((name, figure, ok))
    median = figures["median"]
    return [
        "## Leave after a crash (kill -9), two daphne processes, Redis",
        "",
        "A watcher on process A calls the example's `presence.list` (server-wide presence) and "
        f"applies the `presence_diff` pushes; {users} signed-in users (a session each) connect "
        "to process B; once the watcher lists them all, B is killed with SIGKILL. Time from the "
        "kill until the watcher saw the first and the last of them leave: B's heartbeat stops, "
        "it expires, A's reaper announces the leaves. The library's presence defaults "
        "(`PRESENCE_TTL` 3 s, a heartbeat every `PRESENCE_TTL` / 3, `PRESENCE_EVENT_INTERVAL` "
        "1 s) with `PRESENCE_EVENTS` on. A new B each round. The kill comes right after B "
        "wrote its users' entries, which renews its heartbeat: close to the worst case (a kill "
        "at another moment lands up to a heartbeat, 1 s, sooner).",
        "",
        "| rounds | users | first leave ms (median) | last leave ms (median) "
        "| last leave ms (max) | missed rounds |",
        "|---|---|---|---|---|---|",
        f"| {len(rounds)} | {users} | {ms(median['ms_first'])} | {ms(median['ms_last'])} "
        f"| {ms(figures['max_ms'])} | {figures['missed']} |",
        "",
        f"- last leave per round (ms): {_rounds(rounds)}",
        "",
    ]


def logout_close(figures: dict[str, Any], targets: Targets) -> list[str]:
    """The logout-close section; its targets: every round of each way a session ends within
    :data:`CLOSE_WITHIN_MS`, every socket closed with 4401."""
    per_process = figures["sockets_per_process"]
    lines = [
        "## Close after a logout or a deleted session, two daphne processes, Redis",
        "",
        f"One user signs in through the login form of process A and opens {per_process} "
        "sockets with that session on each of the two processes (each answers `whoami` as the "
        "user). Then the session ends, in two ways: a logout (POST `/accounts/logout/` on A, "
        "Django's `user_logged_out`) or the deletion of the session row from a third process "
        "(this one, through the session store: `post_delete`). Time from the start of the "
        "request or deletion until the first and the last socket was closed with 4401; a "
        "round counts only if every socket had 4401. Default `SESSION_CHECK_INTERVAL` (60 s). "
        "A new login each round.",
        "",
        "| session ends by | rounds | sockets | first close ms (median) "
        "| last close ms (median) | last close ms (max) | close codes | missed rounds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for how, summary in figures["ends"].items():
        rounds = summary["rounds"]
        codes = sorted({code for r in rounds for code in r["codes"]})
        lines.append(
            f"| {how} | {len(rounds)} | {rounds[0]['sockets'] if rounds else 0} "
            f"| {ms(summary['median']['ms_first'])} | {ms(summary['median']['ms_last'])} "
            f"| {ms(summary['max_ms'])} | {', '.join(codes)} | {summary['missed']} |"
        )
        figure, ok = _bound(summary, CLOSE_WITHIN_MS)
        targets.append((f"{how}: every socket of the session closed 4401 within 1 s", figure, ok))
    lines += [""]
    lines += [
        f"- last close per round, {how} (ms): {_rounds(s['rounds'])}"
        for how, s in figures["ends"].items()
    ]
    return [*lines, ""]


def sections(figures: dict[str, Any], targets: Targets) -> list[str]:
    """The sections of the latency scenarios that ran (none: nothing)."""
    body: list[str] = []
    if "crash-leave" in figures:
        body += crash_leave(figures["crash-leave"], targets)
    if "logout-close" in figures:
        body += logout_close(figures["logout-close"], targets)
    return body
