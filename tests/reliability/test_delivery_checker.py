"""The delivery checker's rules themselves, on hand-made histories (no server, no Redis).

Each history breaks exactly one rule; the checker must name exactly that rule. And the rules
it checks are exactly docs/protocol.md's numbered list.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.reliability.delivery_checker import RULES, check, report
from tests.reliability.delivery_history import History

PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
SIZE = 64


def published(h: History, pid: str, stream: str = "all", ok: bool = True) -> None:
    h.add("publish", pid=pid, stream=stream)
    h.add("published", pid=pid, ok=ok)


def push(h: History, conn: str, offset: int, pid: str | None, stream: str = "all", epoch="e"):
    h.add("push", conn, stream=stream, epoch=epoch, offset=offset, pid=pid, bare=None)


def connected(h: History, conn: str = "c.1", announce: int | None = 0, **ready) -> None:
    h.add("ready", conn, **{"client": conn.split(".")[0], "resumable": True, "user": None, **ready})
    if announce is not None:
        h.add("announce", conn, streams={"all": ["e", announce]})


def closed(h: History, conn: str = "c.1") -> None:
    h.add("closing", conn)
    h.add("closed", conn)


def rules(h: History) -> set[str]:
    return {v.rule for v in check(h, SIZE)}


def clean() -> History:
    h = History(seed=7)
    connected(h)
    published(h, "p.1")
    push(h, "c.1", 1, "p.1")
    published(h, "p.2")
    push(h, "c.1", 2, "p.2")
    closed(h)
    return h


def test_a_clean_history_breaks_no_rule():
    assert check(clean(), SIZE) == []


def lost_push() -> History:
    """p.2, published while the connection listened, never arrives (the last push)."""
    h = History()
    connected(h)
    published(h, "p.1")
    push(h, "c.1", 1, "p.1")
    published(h, "p.2")
    closed(h)
    return h


def announced_too_far() -> History:
    """The lost push after the handshake: announced at 1, p.1 was published after it."""
    h = History()
    connected(h, announce=None)
    published(h, "p.1")
    h.add("announce", "c.1", streams={"all": ["e", 1]})
    connected(h, "d.1", announce=None, resumable=False)
    push(h, "d.1", None, "p.1", epoch=None)
    push(h, "c.1", 1, "p.1")  # even when it arrives, the announcement was wrong
    return h


def out_of_order() -> History:
    """2 then 1, with no announcement (so no gap rule applies)."""
    h = History()
    connected(h, announce=None)
    published(h, "p.1")
    published(h, "p.2")
    push(h, "c.1", 2, "p.2")
    push(h, "c.1", 1, "p.1")
    return h


def duplicate() -> History:
    h = History()
    connected(h)
    published(h, "p.1")
    push(h, "c.1", 1, "p.1")
    h.add("resume", "c.1", rid=1, streams={"all": ["e", 1]})
    push(h, "c.1", 1, "p.1")
    h.add("resumed", "c.1", rid=1, result={"all": {"recovered": True, "epoch": "e", "offset": 1}})
    return h


def skipped() -> History:
    """Offset 2 after the announced 0, no fault."""
    h = History()
    connected(h)
    published(h, "p.2")
    push(h, "c.1", 2, "p.2")
    return h


def recovered_with_a_hole() -> History:
    h = History()
    connected(h, announce=None)
    h.add("resume", "c.1", rid=1, streams={"all": ["e", 0]})
    push(h, "c.1", 1, None)
    h.add("resumed", "c.1", rid=1, result={"all": {"recovered": True, "epoch": "e", "offset": 2}})
    return h


def history_lost_without_a_fault() -> History:
    h = History()
    connected(h, announce=None)
    h.add("resume", "c.1", rid=1, streams={"all": ["e", 3]})
    lost = {"recovered": False, "reason": "history_lost", "epoch": "f", "offset": 1}
    h.add("resumed", "c.1", rid=1, result={"all": lost})
    return h


def two_pushes_at_one_position() -> History:
    h = History()
    published(h, "p.1")
    published(h, "p.2")
    connected(h, "c.1", announce=None)
    connected(h, "d.1", announce=None)
    push(h, "c.1", 1, "p.1")
    push(h, "d.1", 1, "p.2")
    return h


def after_the_leave() -> History:
    h = History()
    connected(h, announce=None)
    h.add("join", "c.1", group="g")
    h.add("announce", "c.1", streams={"group:g": ["e", 0]})
    h.add("joined", "c.1", group="g", ok=True)
    h.add("leave", "c.1", group="g")
    h.add("announce", "c.1", streams={"group:g": None})
    h.add("left", "c.1", group="g", ok=True)
    published(h, "p.1", "group:g")
    push(h, "c.1", 1, "p.1", stream="group:g")
    return h


@pytest.mark.parametrize(
    "history, rule",
    [
        (lost_push, "R1"),
        (announced_too_far, "R2"),
        (out_of_order, "R3"),
        (duplicate, "R4"),
        (skipped, "R5"),
        (recovered_with_a_hole, "R6"),
        (history_lost_without_a_fault, "R6"),
        (two_pushes_at_one_position, "R7"),
        (after_the_leave, "R7"),
    ],
)
def test_each_broken_rule_is_reported_as_that_rule_alone(history, rule):
    assert rules(history()) == {rule}


def test_a_fault_excuses_a_gap_and_a_lost_push_but_not_a_duplicate():
    h = History()
    connected(h)
    published(h, "p.1")
    push(h, "c.1", 1, "p.1")
    h.add("fault", kind="redis_restart", what="redis")
    published(h, "p.2")  # lost with Redis: neither R1 nor R5
    h.add("recovered", kind="redis_restart")
    published(h, "p.3")
    push(h, "c.1", 3, "p.3")
    push(h, "c.1", 3, "p.3")
    assert rules(h) == {"R4"}


def test_a_report_shows_the_seed_and_only_what_shows_the_violation():
    h = lost_push()
    h.seed, h.round = 1234, 5
    connected(h, "other.1")
    (violation,) = check(h, SIZE)
    text = report(h, violation)
    assert text.startswith("delivery violation: seed=1234 round=5: R1 (live delivery)")
    assert "p.2" in text and "other.1" not in text
    assert len(text.splitlines()) <= 20


def test_the_checker_checks_exactly_the_documented_rules():
    """docs/protocol.md's numbered guarantee and the checker's registry are the same list."""
    text = PROTOCOL.read_text()
    section = text.split("### The delivery guarantee, precisely")[1].split("\n### ")[0]
    documented = dict(re.findall(r"^\d+\. \*\*(R\d+) ([^*]+?)\.\*\*", section, re.MULTILINE))
    assert {k: v.lower() for k, v in documented.items()} == RULES


def test_a_gap_fill_answered_during_a_leave_does_not_keep_the_group():
    """A push to a group published after the client left is not owed to it (R1), even when a
    resume naming the group was answered between the leave and its reply."""
    h = History()
    connected(h, announce=None)
    h.add("join", "c.1", group="g")
    h.add("announce", "c.1", streams={"group:g": ["e", 0]})
    h.add("joined", "c.1", group="g", ok=True)
    h.add("resume", "c.1", rid=1, streams={"group:g": ["e", 0]})
    h.add("leave", "c.1", group="g")
    h.add(
        "resumed", "c.1", rid=1, result={"group:g": {"recovered": True, "epoch": "e", "offset": 0}}
    )
    h.add("announce", "c.1", streams={"group:g": None})
    h.add("left", "c.1", group="g", ok=True)
    published(h, "p.1", "group:g")
    closed(h)
    assert check(h, SIZE) == []


def test_a_failed_publish_excuses_a_gap_only_to_those_listening_then():
    h = History()
    connected(h, "c.1")
    published(h, "p.1", ok=False)  # its offset (1) may be a hole
    connected(h, "d.1", announce=0)
    published(h, "p.2")
    push(h, "c.1", 2, "p.2")
    push(h, "d.1", 2, "p.2")
    assert [(v.rule, v.conn) for v in check(h, SIZE)] == [("R5", "d.1")]


def test_a_resume_from_the_empty_position_recovers_into_the_first_epoch():
    """Soak seed 18, round 48: a group announced ("", 0) (no push yet), resumed from there on
    another process after the stream's first push: recovered in that epoch from offset 1 is
    the documented answer; with offset 1 missing it is not."""
    for received, expected in ((True, []), (False, ["R1", "R6"])):
        h = History()
        connected(h, announce=None)
        h.add("join", "c.1", group="g")
        h.add("announce", "c.1", streams={"group:g": ["", 0]})
        h.add("joined", "c.1", group="g", ok=True)
        published(h, "p.1", "group:g")
        h.add("resume", "c.1", rid=1, streams={"group:g": ["", 0]})
        if received:
            push(h, "c.1", 1, "p.1", "group:g", epoch="e1")
        result = {"group:g": {"recovered": True, "epoch": "e1", "offset": 1}}
        h.add("resumed", "c.1", rid=1, result=result)
        closed(h)
        assert [v.rule for v in check(h, SIZE)] == expected
