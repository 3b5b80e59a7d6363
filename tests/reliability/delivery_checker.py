"""The delivery checker: judges a recorded :class:`History` against the numbered rules of
docs/protocol.md ("The delivery guarantee, precisely"), R1 to R7 in :data:`RULES`.

:func:`check` returns every violation, earliest first; :func:`~.delivery_history.report`
renders one with the seed and only the events that show it. The live side that records
histories is :mod:`.delivery_harness`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from tests.reliability.delivery_history import INF, REDIS_FAULTS, Event, History, Publish, report

__all__ = ["RULES", "Violation", "check", "report"]

#: The rules of docs/protocol.md, by number (a test asserts both lists are the same).
RULES = {
    "R1": "live delivery",
    "R2": "announced position",
    "R3": "offset order",
    "R4": "exactly once",
    "R5": "no silent gap",
    "R6": "recovery",
    "R7": "the right pushes",
}
#: The documented reasons of ``recovered: false``.
REASONS = ("history_lost", "too_far_behind", "forbidden", "invalid", "rate_limited")


@dataclass(frozen=True)
class Violation:
    """A broken rule: where (event ``t``, connection, stream), why, and the pushes involved."""

    rule: str
    t: int
    conn: str
    stream: str | None
    message: str
    pids: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.rule} ({RULES[self.rule]}) at #{self.t} on {self.conn}: {self.message}"


@dataclass
class Conn:
    """One connection's events, in order."""

    id: str
    client: str
    resumable: bool
    user: Any
    ready: int
    end: float = INF
    events: list[Event] = field(default_factory=list)


class Checker:
    """One pass over a history; ``violations`` afterwards."""

    def __init__(self, history: History, history_size: int):
        self.h, self.size = history, history_size
        self.pubs: dict[str, Publish] = history.publishes()
        self.faults = history.faults()
        self.conns: dict[str, Conn] = {}
        self.by_stream: dict[str, list[Publish]] = defaultdict(list)
        for pub in self.pubs.values():
            self.by_stream[pub.stream].append(pub)
        self.offset_of: dict[tuple[str, str], tuple[str, int]] = {}  # (stream, pid) -> position
        self.pid_at: dict[tuple[str, str, int], str] = {}  # (stream, epoch, offset) -> pid
        self.violations: list[Violation] = []
        for e in history.events:
            if e.kind == "ready":
                d = e.data
                self.conns[e.conn] = Conn(e.conn, d["client"], d["resumable"], d["user"], e.t)
            elif e.conn in self.conns:
                c = self.conns[e.conn]
                c.events.append(e)
                if e.kind in ("closing", "closed"):
                    c.end = min(c.end, e.t)
                if e.kind == "push" and e.data["pid"] and e.data["offset"] is not None:
                    key = (e.data["stream"], e.data["pid"])
                    self.offset_of.setdefault(key, (e.data["epoch"], e.data["offset"]))
                    self.pid_at.setdefault((key[0], e.data["epoch"], e.data["offset"]), key[1])

    def fail(self, rule: str, e: Event | None, c: Conn, stream: str | None, msg: str, *pids):
        t = e.t if e is not None else c.ready
        self.violations.append(Violation(rule, t, c.id, stream, msg, tuple(pids)))

    def first_fault_after(self, t: float) -> float:
        return min((s for s, _, _ in self.faults if s >= t), default=INF)

    def in_fault(self, t: float) -> bool:
        return any(s <= t <= e for s, e, _ in self.faults)

    def disturbed(self, c: Conn, t: float) -> bool:
        """Whether a fault overlapped the connection's life up to ``t``."""
        return any(s <= t and e >= c.ready for s, e, _ in self.faults)

    def run(self) -> list[Violation]:
        for c in self.conns.values():
            self.live(c)
            self.wire(c)
        self.violations.sort(key=lambda v: v.t)
        return self.violations

    def receiving(self, c: Conn) -> list[tuple[str, int, float]]:
        """(stream, from, until) of each span the connection received a stream."""
        spans = [("all", c.ready, c.end)]
        if c.user is not None:
            spans.append((f"user:{c.user}", c.ready, c.end))
        groups: dict[str, int] = {}
        left: set[str] = set()  # a resume answered after a leave does not bring it back
        asked = {e.data["rid"]: e.data["streams"] for e in c.events if e.kind == "resume"}
        for e in c.events:
            stream = f"group:{e.data['group']}" if "group" in e.data else None
            if e.kind == "joined" and e.data.get("ok"):
                groups[stream] = e.t
                left.discard(stream)
            elif e.kind == "resumed" and e.data.get("result"):
                for named, entry in e.data["result"].items():
                    restored = named in asked.get(e.data["rid"], {}) and "epoch" in entry
                    if named.startswith("group:") and restored and named not in left:
                        groups.setdefault(named, e.t)
            elif e.kind == "leave":
                left.add(stream)
                if stream in groups:
                    spans.append((stream, groups.pop(stream), e.t))
        spans += [(stream, start, c.end) for stream, start in groups.items()]
        return spans

    def live(self, c: Conn) -> None:
        """R1 (every push published while it received the stream arrived) and R2."""
        got = {e.data["pid"] for e in c.events if e.kind == "push"}
        for stream, start, until in self.receiving(c):
            if self.in_fault(start):
                continue
            until = min(until, self.first_fault_after(start))
            for pub in self.by_stream.get(stream, ()):
                if pub.ok and start < pub.start and pub.end < until and pub.pid not in got:
                    e = self.h.events[pub.end]
                    self.fail("R1", e, c, stream, f"{pub.pid} never arrived", pub.pid)
        for e in c.events:
            if e.kind != "announce":
                continue
            for stream, pos in e.data["streams"].items():
                if pos is None:
                    continue
                since = c.ready if stream == "all" or stream.startswith("user:") else e.t
                for pub in self.by_stream.get(stream, ()):
                    at = self.offset_of.get((stream, pub.pid))
                    if pub.start > since and at and at[0] == pos[0] and at[1] <= pos[1]:
                        msg = f"announced {pos}, yet {pub.pid} published after has offset {at[1]}"
                        self.fail("R2", e, c, stream, msg, pub.pid)

    def wire(self, c: Conn) -> None:
        """R3, R4, R5, R6, R7 over the connection's frames in order."""
        top: dict[str, tuple[str, int]] = {}  # highest position received
        base: dict[str, tuple[str, int]] = {}  # last position known (R5)
        received: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)  # -> offset: t
        pids: set[str] = set()
        named: dict[str, tuple[str, int]] = {}
        pending: dict[str, int] = defaultdict(int)
        requests: dict[Any, Event] = {}
        forgotten: set[str] = set()
        left: dict[str, int] = {}
        for e in c.events:
            d = e.data
            if e.kind == "push":
                self.push(c, e, top, base, received, pids, named, pending, forgotten, left)
            elif e.kind == "announce":
                for stream, pos in d["streams"].items():
                    if pos is None:
                        forgotten.add(stream)
                        base.pop(stream, None)
                    else:
                        forgotten.discard(stream)
                        base[stream] = tuple(pos)
            elif e.kind == "resume":
                requests[d["rid"]] = e
                for stream, pos in d["streams"].items():
                    pending[stream] += 1
                    named[stream] = tuple(pos)
            elif e.kind == "resumed" and d["rid"] in requests:
                asked = requests[d["rid"]].data["streams"]
                for stream in asked:
                    pending[stream] -= 1
                self.recovery(c, e, requests[d["rid"]], received)
                for stream, entry in (d.get("result") or {}).items():
                    if "epoch" in entry:
                        pos = (entry["epoch"], entry["offset"])
                        old = base.get(stream)
                        if old is None or old[0] != pos[0] or old[1] < pos[1]:
                            base[stream] = pos
            elif e.kind == "join":
                left.pop(f"group:{d['group']}", None)
            elif e.kind == "left" and d.get("ok"):
                left[f"group:{d['group']}"] = e.t

    def push(self, c, e, top, base, received, pids, named, pending, forgotten, left) -> None:
        d = e.data
        stream, epoch, offset, pid = d["stream"], d["epoch"], d["offset"], d["pid"]
        pub = self.pubs.get(pid) if pid else None
        if pid is not None and pid in pids:
            self.fail("R4", e, c, stream, f"{pid} received twice", pid)
        pids.add(pid)
        if stream in left and pub is not None and pub.start > left[stream]:
            self.fail("R7", e, c, stream, f"{pid} published after the leave was answered", pid)
        if not c.resumable or offset is None:
            return
        if pub is not None and pub.stream != stream:
            self.fail("R7", e, c, stream, f"{pid} was sent to {pub.stream}", pid)
        first = self.offset_of.get((stream, pid)) if pid else None
        owner = self.pid_at.get((stream, epoch, offset))
        if first is not None and first != (epoch, offset):
            self.fail("R7", e, c, stream, f"{pid} at {[epoch, offset]}, elsewhere {first}", pid)
        elif pid and owner and owner != pid:
            self.fail("R7", e, c, stream, f"{pid} at {[epoch, offset]}, also {owner}'s", pid, owner)
        if stream in forgotten:
            self.fail("R7", e, c, stream, f"offset {offset} after the leave's null")
        seen = received[(stream, epoch)]
        if offset in seen and not d.get("bare"):
            self.fail("R4", e, c, stream, f"offset {offset} received twice (#{seen[offset]})")
        if stream in named and named[stream][0] == epoch and offset <= named[stream][1]:
            self.fail("R4", e, c, stream, f"offset {offset}, at or before {named[stream]} resumed")
        quiet = not pending[stream]
        high = top.get(stream)
        if quiet and high and high[0] == epoch and offset < high[1]:
            self.fail("R3", e, c, stream, f"offset {offset} after {high[1]}")
        known = base.get(stream)
        if quiet and known and not self.disturbed(c, e.t):
            if known[0] != epoch:
                self.fail("R5", e, c, stream, f"epoch {epoch} after {known} without a fault")
            elif offset > known[1] + 1 and not self.uncertain(stream, c, e.t):
                skipped = [self.pid_at.get((stream, epoch, o)) for o in range(known[1] + 1, offset)]
                msg = f"offset {offset} after {known[1]}: skipped"
                self.fail("R5", e, c, stream, msg, *filter(None, skipped))
        seen.setdefault(offset, e.t)
        if not high or high[0] != epoch or high[1] < offset:
            top[stream] = (epoch, offset)
        if not known or known[0] != epoch or known[1] < offset:
            base[stream] = (epoch, offset)

    def uncertain(self, stream: str, c: Conn, t: int) -> bool:
        """Whether a push to ``stream`` that got no good reply was on its way while the
        connection listened, before ``t`` (its offset may be a hole nobody is sent)."""
        return any(
            p.start < t and p.end > c.ready and not p.ok for p in self.by_stream.get(stream, ())
        )

    def recovery(self, c: Conn, e: Event, request: Event, received) -> None:
        """R6: the reply to ``request`` names every stream, each recovered or truly not."""
        error, result = e.data.get("error"), e.data.get("result")
        if error is not None:
            if not any(s <= e.t and end >= request.t for s, end, _ in self.faults):
                self.fail("R6", e, c, None, f"resume failed ({error}) without a fault")
            return
        for stream, (epoch, after) in request.data["streams"].items():
            entry = (result or {}).get(stream)
            if entry is None:
                self.fail("R6", e, c, stream, "the reply does not name it")
            elif entry.get("recovered") is True:
                if (epoch, after) == ("", 0):
                    # "No push yet": the stream's first epoch from its first push (protocol.md).
                    epoch = entry.get("epoch", "")
                seen = received[(stream, epoch)]
                missing = [o for o in range(after + 1, entry["offset"] + 1) if o not in seen]
                if entry.get("epoch") != epoch:
                    self.fail("R6", e, c, stream, f"recovered in epoch {entry.get('epoch')}")
                elif missing:
                    self.fail("R6", e, c, stream, f"recovered, but offsets {missing} missing")
            else:
                self.not_recovered(c, e, stream, epoch, after, entry)

    def not_recovered(self, c: Conn, e: Event, stream: str, epoch: str, after: int, entry) -> None:
        reason = entry.get("reason")
        redis_fault = any(s < e.t and kind in REDIS_FAULTS for s, _, kind in self.faults)
        if reason not in REASONS:
            self.fail("R6", e, c, stream, f"undocumented reason {reason!r}")
        elif reason == "history_lost" and (entry.get("epoch") == epoch or not redis_fault):
            self.fail("R6", e, c, stream, f"history_lost, but {entry} (asked {[epoch, after]})")
        elif reason == "too_far_behind" and entry.get("offset", 0) - after <= self.size:
            self.fail("R6", e, c, stream, f"too_far_behind at {after} -> {entry.get('offset')}")
        elif reason in ("forbidden", "invalid"):
            # The harness only names its own streams, at positions it was given.
            self.fail("R6", e, c, stream, f"{reason} for a position the client was given")


def check(history: History, history_size: int) -> list[Violation]:
    """Every violation of the rules in ``history``, earliest first."""
    return Checker(history, history_size).run()
