"""Presence reads: who is connected, on every process, and who is in which group.

Each process's :class:`~.presence_tracker.PresenceTracker` keeps its connections' entries in
the backend; this module reads them. Readers skip processes whose heartbeat is older than
``PRESENCE_TTL``. Reads are bounded: :func:`get_presence` returns a page,
:func:`get_presence_state` one entry per user and counts; one read of the store serves every
query of the process for :data:`READ_MAX_AGE` seconds.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from .._internal.runtime import RUNTIME, Part
from ..backends import presence_store
from ..conf import wscommands_settings
from ..delivery import messaging
from ..delivery.peer import split_id
from ..wire.jsoncodec import decode, encode
from .diffs import user_key

#: The keys of each presence entry, in the agreed order.
FIELDS = ("connection_id", "user_id", "username", "connected_since")

#: Seconds one read of the store serves every presence query of this process. Reading and
#: aggregating costs O(connections): without sharing, N clients asking once each would cost
#: the server O(N^2). Results may be this much older than the store.
READ_MAX_AGE = 0.5


class _Snapshot:
    """The entries of one read, and the query results computed from them (by query)."""

    def __init__(self, entries: list[dict[str, Any]], taken: float):
        self.entries = entries
        self.taken = taken
        self.results: dict[tuple, Any] = {}


class _Reads:
    """This loop's latest snapshot and the read in progress, if any."""

    def __init__(self) -> None:
        self.snapshot: _Snapshot | None = None
        self.task: asyncio.Task[_Snapshot] | None = None


READS: Part[_Reads] = Part("presence reads", _Reads)


async def _snapshot() -> _Snapshot:
    """A read of every live entry at most READ_MAX_AGE old; concurrent callers share one."""
    loop = asyncio.get_running_loop()
    reads = RUNTIME.get(READS)
    snapshot = reads.snapshot
    if snapshot is not None and loop.time() - snapshot.taken < READ_MAX_AGE:
        return snapshot
    if reads.task is None or reads.task.done():
        reads.task = loop.create_task(_fetch_snapshot(reads, loop))
    # shield: one caller giving up must not cancel the read the others wait for.
    return await asyncio.shield(reads.task)


async def _fetch_snapshot(reads: _Reads, loop: asyncio.AbstractEventLoop) -> _Snapshot:
    texts = await presence_store().presence_entries()
    reads.snapshot = _Snapshot([decode(text) for text in texts], loop.time())
    return reads.snapshot


async def _query(key: tuple, compute: Any) -> Any:
    """``compute(entries)`` on the current snapshot, computed once per snapshot and key.

    Callers get their own copy (JSON round trip: results are small, at most one page).
    """
    snapshot = await _snapshot()
    text = snapshot.results.get(key)
    if text is None:
        text = snapshot.results[key] = encode(compute(snapshot.entries))
    return decode(text)


def _page_size(limit: Any) -> int:
    if limit is None:
        return wscommands_settings.PRESENCE_LIMIT
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    return limit


def _members(entries: list[dict[str, Any]], group: str | None) -> list[dict[str, Any]]:
    if group is None:
        return entries
    return [entry for entry in entries if group in entry.get("groups", ())]


async def get_presence(
    group: str | None = None, *, limit: int | None = None, offset: int = 0
) -> list[dict[str, Any]]:
    """A page of the live connections of every process, or of the members of ``group``.

    Each entry is ``{"connection_id", "user_id", "username", "connected_since"}`` (unix
    seconds), sorted by ``connected_since``; the page holds at most ``limit`` entries
    (default ``WSCOMMANDS["PRESENCE_LIMIT"]``) from ``offset`` on: page through with
    ``offset`` (connections coming and going meanwhile can shift entries between pages).
    Raises ValueError for an invalid group name, limit or offset, and BackendUnavailable
    when Redis cannot be reached.
    """
    if group is not None:
        messaging.group_channel_name(group)
    size = _page_size(limit)
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset must be an integer >= 0, got {offset!r}")

    def page(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        result = [{name: entry.get(name) for name in FIELDS} for entry in _members(entries, group)]
        result.sort(key=lambda entry: (entry["connected_since"], entry["connection_id"]))
        return result[offset : offset + size]

    return await _query(("page", group, size, offset), page)


def process_of(connection_id: str) -> str:
    """The process (hub channel) a connection id belongs to."""
    return split_id(connection_id)[0]


async def get_presence_state(
    group: str | None = None, *, limit: int | None = None
) -> dict[str, Any]:
    """Who is present, one entry per signed-in user, anonymous connections counted.

    Returns ``{"group", "users": {"<user id>": {"user_id", "username", "connections":
    [ids]}}, "guests": {"<process>": n}, "count": {"connections", "users", "guests"},
    "truncated"}``: at most ``limit`` users (default ``WSCOMMANDS["PRESENCE_LIMIT"]``, by
    username; ``truncated`` says some were left out), exact counts. It has the shape of a
    ``presence_diff``'s joins, so a client applies diffs to it (the browser client's
    ``Presence`` does). Raises as :func:`get_presence`.
    """
    if group is not None:
        messaging.group_channel_name(group)
    size = _page_size(limit)
    return await _query(("state", group, size), lambda entries: _state(entries, group, size))


def _state(entries: list[dict[str, Any]], group: str | None, size: int) -> dict[str, Any]:
    users: dict[str, dict[str, Any]] = {}
    guests: Counter[str] = Counter()
    members = _members(entries, group)
    for entry in members:
        connection_id, user_id = entry["connection_id"], entry.get("user_id")
        if user_id is None:
            guests[process_of(connection_id)] += 1
            continue
        user = users.setdefault(
            user_key(user_id),
            {"user_id": user_id, "username": entry.get("username"), "connections": []},
        )
        user["connections"].append(connection_id)
    ordered = sorted(users.items(), key=lambda item: (str(item[1]["username"]), item[0]))
    for _, user in ordered[:size]:
        user["connections"].sort()
    return {
        "group": group,
        "users": dict(ordered[:size]),
        "guests": dict(guests),
        "count": {
            "connections": len(members),
            "users": len(users),
            "guests": sum(guests.values()),
        },
        "truncated": len(users) > size,
    }
