"""Presence diffs merged per interval, and membership calls kept in order per key."""

from __future__ import annotations

import asyncio

from wscommands._internal.ordered import OrderedCalls
from wscommands.presence.diffs import PresenceDiffs


def test_a_burst_merges_into_one_diff_per_group():
    """Users listed by user id, guests as the last absolute count, groups apart."""
    diffs = PresenceDiffs()
    diffs.join(None, "p~1", 7, "ann")
    diffs.join(None, "p~2", 7, "ann")
    diffs.join("lobby", "p~1", 7, "ann")
    for count in range(1, 1001):
        diffs.guests(None, "p", count)
    assert diffs.take() == [
        (
            None,
            {
                "group": None,
                "joins": {"7": {"user_id": 7, "username": "ann", "connections": ["p~1", "p~2"]}},
                "leaves": {},
                "guests": {"p": 1000},
            },
        ),
        (
            "lobby",
            {
                "group": "lobby",
                "joins": {"7": {"user_id": 7, "username": "ann", "connections": ["p~1"]}},
                "leaves": {},
                "guests": {},
            },
        ),
    ]
    assert not diffs and diffs.take() == []


def test_a_connection_that_comes_and_goes_within_an_interval_is_never_announced():
    """Join then leave cancel out; a leave of a connection announced before is sent."""
    diffs = PresenceDiffs()
    diffs.join(None, "p~1", 7, "ann")
    diffs.leave(None, "p~1", 7, "ann")
    assert not diffs
    diffs.leave(None, "p~0", 7, "ann")
    [(_, payload)] = diffs.take()
    assert payload["joins"] == {}
    assert payload["leaves"] == {"7": {"user_id": 7, "username": "ann", "connections": ["p~0"]}}


async def test_ordered_calls_keep_their_order_per_key_and_run_concurrently_across_keys():
    """A slow first call on a key holds back the next on that key only."""
    calls = OrderedCalls()
    gate = asyncio.Event()
    done: list[str] = []

    async def step(name: str, wait: bool = False) -> str:
        if wait:
            await gate.wait()
        done.append(name)
        return name

    first = calls.run("g", lambda: step("add g", wait=True))
    second = calls.run("g", lambda: step("discard g"))
    other = calls.run("h", lambda: step("add h"))
    assert await other == "add h"
    assert done == ["add h"] and not second.done()
    gate.set()
    assert await second == "discard g" and await first == "add g"
    assert done == ["add h", "add g", "discard g"]
