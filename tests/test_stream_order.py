"""The per-process stream sequencer and the per-connection record of what was sent."""

from __future__ import annotations

from dataclasses import dataclass

from wscommands.streams.budget import ReplayBudget
from wscommands.streams.cursor import Push, StreamCursor
from wscommands.streams.order import StreamOrder
from wscommands.streams.sent import Sent


@dataclass
class P:
    stream: str
    epoch: str
    offset: int


def offsets(pushes) -> list[tuple[str, int]]:
    return [(p.epoch, p.offset) for p in pushes]


async def test_an_overtaken_push_waits_for_the_one_before_it():
    order = StreamOrder(wait=0.5, max_held=10)
    order.begin("all")
    assert order.baseline("all", ("e", 4)) == []
    assert offsets(order.arrive(P("all", "e", 6), now=0)) == []  # 5 is on its way
    assert order.next_deadline() == 0.5
    assert offsets(order.arrive(P("all", "e", 5), now=0.1)) == [("e", 5), ("e", 6)]
    assert order.next_deadline() is None
    assert order.arrive(P("all", "e", 5), now=0.2) == []  # delivered already: dropped


async def test_a_missing_push_is_skipped_after_the_wait_and_never_delivered_late():
    order = StreamOrder(wait=0.5, max_held=10)
    order.begin("all")
    order.baseline("all", ("e", 0))
    order.arrive(P("all", "e", 2), now=0)
    order.arrive(P("all", "e", 3), now=0.1)
    assert order.due(now=0.4) == []
    assert offsets(order.due(now=0.5)) == [("e", 2), ("e", 3)]
    assert order.skipped == 1
    assert order.arrive(P("all", "e", 1), now=0.6) == []  # a resume brings it back


async def test_held_pushes_are_bounded():
    order = StreamOrder(wait=60, max_held=3)
    order.begin("all")
    order.baseline("all", ("e", 0))
    for n in (2, 3, 4):
        assert order.arrive(P("all", "e", n), now=0) == []
    assert offsets(order.arrive(P("all", "e", 5), now=0)) == [("e", n) for n in (2, 3, 4, 5)]


async def test_pushes_before_the_baseline_wait_and_those_it_covers_are_dropped():
    order = StreamOrder(wait=0.5, max_held=10)
    order.begin("g")
    entry = order.entry("g")  # a connection entered before the position was read
    assert order.arrive(P("g", "e", 3), now=0) == []
    assert order.arrive(P("g", "e", 4), now=0) == []
    assert offsets(order.baseline("g", ("e", 3))) == [("e", 4)]
    assert entry.result() == ("e", 3)


async def test_entry_is_the_last_push_whose_recipients_were_taken():
    order = StreamOrder(wait=0.5, max_held=10)
    order.begin("all")
    order.baseline("all", ("e", 1))
    (push,) = order.arrive(P("all", "e", 2), now=0)
    assert order.entry("all") == ("e", 1)
    order.delivering(push)
    assert order.entry("all") == ("e", 2)


async def test_a_new_epoch_counts_from_one():
    order = StreamOrder(wait=0.5, max_held=10)
    order.begin("all")
    order.baseline("all", ("", 0))  # no push yet
    assert offsets(order.arrive(P("all", "f", 1), now=0)) == [("f", 1)]
    assert offsets(order.arrive(P("all", "g", 1), now=0)) == [("g", 1)]  # history lost


def test_sent_ranges_answer_what_was_sent_and_stay_bounded():
    sent = Sent("e", floor=10)
    for offset in (11, 12, 13, 20, 15, 14):
        sent.add(offset, keep=100)
    assert sent.ranges == [[11, 15], [20, 20]]
    assert sent.has(14) and not sent.has(16) and not sent.has(10)
    sent.add(500, keep=100)
    assert sent.ranges == [[500, 500]]  # older than one history: forgotten


async def test_missing_pushes_found_in_history_fill_the_gap():
    order = StreamOrder(wait=0.5, max_held=10)
    order.begin("all")
    order.baseline("all", ("e", 1))
    order.arrive(P("all", "e", 4), now=0)
    assert [(s, e, a, h.offset) for s, e, a, h in order.gaps(now=0.5)] == [("all", "e", 1, 4)]
    found = [P("all", "e", 2), P("all", "e", 3), P("all", "other", 3)]
    assert offsets(order.fill(found, now=0.5)) == [("e", 2), ("e", 3), ("e", 4)]
    assert order.skipped == 0 and order.gaps(now=1) == []


async def test_pushes_missed_while_unsubscribed_are_recovered_from_history_once():
    """A catch-up after a reconnection: what history has after the released offset goes
    out in order, what was delivered meanwhile is dropped, a new epoch starts from 1, and
    pushes of yet another epoch (history lost again while it was read) are ignored."""
    order = StreamOrder(wait=0.5, max_held=10)
    order.begin("all")
    order.begin("g")
    order.baseline("all", ("e", 2))
    order.baseline("g", ("", 0))
    assert order.followed() == {"all": ("e", 2), "g": ("", 0)}
    since = order.followed()["all"]
    assert offsets(order.arrive(P("all", "e", 3), now=0)) == [("e", 3)]  # live meanwhile
    missed = [P("all", "e", 3), P("all", "e", 4)]
    assert offsets(order.recover(since, missed, now=0)) == [("e", 4)]
    assert order.recover(since, missed, now=0) == []
    restarted = [P("g", "f", 1), P("g", "f", 2)]  # Redis came back empty
    assert offsets(order.recover(("", 0), restarted, now=0)) == [("f", 1), ("f", 2)]
    assert order.recover(("", 0), [P("g", "h", 1)], now=0) == []


def test_the_replay_budget_refuses_whole_and_says_when(settings):
    settings.WSCOMMANDS = {
        **settings.WSCOMMANDS,
        "RESUME_PUSHES": 600,
        "RESUME_BYTES": 10**6,
        "RESUME_INTERVAL": 60.0,
    }
    budget = ReplayBudget()
    assert budget.take(500, 1000) == 0.0
    assert budget.exhausted() == 0.0
    wait = budget.take(500, 1000)  # 100 left: refused whole, nothing taken
    assert 39 < wait <= 40  # 400 more pushes refill in 40 s
    assert budget.take(100, 10) == 0.0
    assert budget.exhausted() > 0


class _Socket:
    """A resumable connection's socket as a cursor writes to it: the texts it was sent."""

    def __init__(self) -> None:
        self.id = "p~1"
        self.streams = None
        self.texts: list[str] = []

    async def push_text(self, text: str) -> None:
        self.texts.append(text)


async def test_a_stream_left_and_joined_again_keeps_what_was_sent(settings):
    """Soak seed 18, round 31: a connection left a group, joined again and resumed from an
    older position; the push it had before its leave came twice (R4). What was sent of a
    left stream is kept (for MAX_GROUPS_PER_CONNECTION streams), so a replay skips it."""
    settings.WSCOMMANDS = {"MAX_GROUPS_PER_CONNECTION": 2}
    socket = _Socket()
    cursor = StreamCursor(socket)
    cursor.start_at("group:a", "e1", 10)
    await cursor.send(Push("group:a", "e1", 11, '{"n":11}'))
    cursor.forget("group:a")  # the leave
    cursor.start_at("group:a", "e1", 20)  # joined again, announced at 20
    assert cursor.of("group:a", "e1").has(11)  # a resume from 10 does not replay 11
    for group in ("b", "c", "d"):  # more left streams than the bound: the oldest goes
        cursor.start_at(f"group:{group}", "e1", 0)
        await cursor.send(Push(f"group:{group}", "e1", 1, "{}"))
        cursor.forget(f"group:{group}")
    assert set(cursor.dormant) == {"group:c", "group:d"}
    assert "group:b" not in cursor.sent


async def test_a_first_push_that_beats_the_baseline_reply_is_delivered_once():
    """Soak seed 1001, round 379: a group's first push was appended just after the
    baseline read (which found no push yet, ``("", 0)``) and arrived before its reply. The
    buffered push went out under the baseline's epoch, so the next push looked like a new
    epoch: the sequencer counted from offset 1 again, held it, and the gap fill delivered
    the first push a second time (a plain connection got it twice, R4)."""
    order = StreamOrder(wait=0.5, max_held=10)
    order.begin("group:g")
    assert order.arrive(P("group:g", "e", 1), now=0) == []  # before the baseline's reply
    assert offsets(order.baseline("group:g", ("", 0))) == [("e", 1)]
    assert offsets(order.arrive(P("group:g", "e", 2), now=0.1)) == [("e", 2)]
    assert order.gaps(now=1) == [] and order.due(now=1) == []
    assert order.arrive(P("group:g", "e", 1), now=1) == []  # e.g. read again from history


async def test_pushes_buffered_before_the_baseline_go_through_the_epoch_rules():
    """The same for a Redis flush between the baseline read and a push: the buffered push
    of the new epoch starts it (it is not released as an offset of the old one)."""
    order = StreamOrder(wait=0.5, max_held=10)
    order.begin("all")
    order.arrive(P("all", "new", 2), now=0)
    order.arrive(P("all", "new", 1), now=0)
    assert offsets(order.baseline("all", ("old", 1))) == [("new", 1), ("new", 2)]
    assert order.entry("all") == ("new", 0)
    assert offsets(order.arrive(P("all", "new", 3), now=0.1)) == [("new", 3)]


async def test_a_late_push_of_an_epoch_left_does_not_restart_the_new_one():
    """Redis flushed while a push of the old epoch was on its way: it arrives after the new
    epoch's first push. Going back to the new epoch then resumes where it was, rather than
    counting from offset 1 again (the gap fill would deliver offset 1 a second time, R4)."""
    order = StreamOrder(wait=0.5, max_held=10)
    order.begin("all")
    order.baseline("all", ("old", 5))
    assert offsets(order.arrive(P("all", "new", 1), now=0)) == [("new", 1)]
    assert offsets(order.arrive(P("all", "old", 6), now=0.1)) == [("old", 6)]
    assert offsets(order.arrive(P("all", "new", 2), now=0.2)) == [("new", 2)]
    assert order.gaps(now=1) == [] and order.due(now=1) == []
    assert order.arrive(P("all", "new", 1), now=1) == []
    assert order.arrive(P("all", "old", 6), now=1) == []
