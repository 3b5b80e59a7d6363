"""The history the delivery checker judges: every event of one round, in the order the test
process saw it.

The test process is one asyncio loop: an event's index ``t`` is a true "happened before" for
what the checker can see (a publish whose request was sent after a client's handshake
returned has a larger ``t``). Event kinds and their data:

- ``publish`` {pid, stream} (the sender's request is about to go out) and ``published``
  {pid, ok, error} (its reply came, ``ok`` without errors; none when its connection died);
- ``ready`` {client, resumable, user, process} (the handshake returned), ``closing`` (the
  client starts a close: it stops receiving), ``closed`` (its reader ended, for any reason);
- ``announce`` {streams: {stream: [epoch, offset] or None}};
- ``push`` {stream, epoch, offset, pid, bare} (epoch/offset None on plain connections; pid
  None for a push no publisher of the checker sent, e.g. the example project's notices);
- ``resume`` {rid, streams: {stream: [epoch, offset]}} and ``resumed`` {rid, result, error};
- ``join``/``joined``/``leave``/``left`` {group, ok};
- ``fault`` {kind, what} (the checker stops counting on delivery from here: the drain before
  it is done), ``recovered`` {kind} (both processes serve again).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

INF = float("inf")
REDIS_FAULTS = ("redis_restart", "redis_flush")


@dataclass(frozen=True)
class Event:
    """One thing that happened; ``conn`` names the connection it happened on, if any."""

    t: int
    kind: str
    conn: str | None
    data: dict[str, Any]

    def line(self) -> str:
        """One readable line: ``#t conn kind data``."""
        items = " ".join(f"{k}={v}" for k, v in self.data.items() if v is not None)
        return f"#{self.t:<6} {self.conn or '-':<8} {self.kind:<9} {items}"


@dataclass
class Publish:
    """One push a publisher of the checker sent."""

    pid: str
    stream: str
    start: int
    end: float = INF
    ok: bool = False


@dataclass
class History:
    """The events of a round, appended as they happen; ``seed`` and ``round`` for reports."""

    seed: int = 0
    round: int = 0
    events: list[Event] = field(default_factory=list)
    _pids: Any = field(default_factory=itertools.count)

    def add(self, kind: str, conn: str | None = None, /, **data: Any) -> Event:
        event = Event(len(self.events), kind, conn, data)
        self.events.append(event)
        return event

    def new_pid(self, publisher: str) -> str:
        return f"{publisher}.{next(self._pids)}"

    @property
    def now(self) -> int:
        """The index the next event will get."""
        return len(self.events)

    def publishes(self) -> dict[str, Publish]:
        found: dict[str, Publish] = {}
        for e in self.events:
            if e.kind == "publish":
                found[e.data["pid"]] = Publish(e.data["pid"], e.data["stream"], e.t)
            elif e.kind == "published" and e.data["pid"] in found:
                found[e.data["pid"]].end = e.t
                found[e.data["pid"]].ok = bool(e.data.get("ok"))
        return found

    def faults(self) -> list[tuple[int, float, str]]:
        """(start, end, kind) of each fault; end INF if it never recovered."""
        spans: list[tuple[int, float, str]] = []
        for e in self.events:
            if e.kind == "fault":
                spans.append((e.t, INF, e.data["kind"]))
            elif e.kind == "recovered" and spans and spans[-1][1] == INF:
                spans[-1] = (spans[-1][0], e.t, spans[-1][2])
        return spans


def report(history: History, violation: Any, context: int = 14) -> str:
    """The seed, the violation (a checker's: rule, t, conn, stream, pids) and the events that
    show it, not a dump: that client's events of that stream, the publishes involved, faults."""
    conns = {e.conn for e in history.events if e.kind == "ready"}
    client = next(
        (
            e.data["client"]
            for e in history.events
            if e.kind == "ready" and e.conn == violation.conn
        ),
        None,
    )
    mine = {
        e.conn for e in history.events if e.kind == "ready" and e.data["client"] == client
    } & conns

    def shows(e: Event) -> bool:
        if e.kind in ("fault", "recovered"):
            return True
        if e.kind in ("publish", "published"):
            return e.data["pid"] in violation.pids
        if e.conn not in mine:
            return False
        s, d = violation.stream, e.data
        if s is None or e.kind in ("ready", "closing", "closed"):
            return True
        return (
            d.get("stream") == s
            or s in (d.get("streams") or {})
            or s in (d.get("result") or {})
            or (d.get("group") is not None and f"group:{d['group']}" == s)
        )

    before = [e for e in history.events[: violation.t + 1] if shows(e)][-context:]
    after = [e for e in history.events[violation.t + 1 :] if shows(e)][:4]
    lines = [
        f"delivery violation: seed={history.seed} round={history.round}: {violation}",
        *(e.line() for e in before),
        *(e.line() for e in after),
    ]
    return "\n".join(lines)
