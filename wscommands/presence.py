"""Presence: who is connected, on every process, and who is in which group.

Each process's :class:`PresenceTracker` (owned by its hub) keeps one entry per local
connection and copies it to the backend *in the background*: connecting, joining and
leaving never wait on Redis, and a stalled Redis delays nothing but presence itself. The
tracker renews the process's heartbeat every ``PRESENCE_TTL / 3`` seconds; readers skip
processes whose heartbeat is older than ``PRESENCE_TTL``.

A process killed without cleaning up is *reaped* by a live one as soon as its heartbeat
expires: the reaper takes its entries atomically (so exactly one process does it) and
announces that they left, so watchers see no ghosts. A reaper learns of other processes
when it wakes (at its own heartbeat, and when the next known heartbeat expires): one that
came and went between two wakes is reaped at the next, its entries kept until then. No
failure stops the loop: an unexpected error is logged, and the next wake tries again.

Presence events (``WSCOMMANDS["PRESENCE_EVENTS"]``) are coalesced: at most one
``presence_diff`` per group and process every ``PRESENCE_EVENT_INTERVAL`` seconds, with
signed-in users listed and anonymous connections counted (:mod:`.presence_diffs`). Reads
are bounded: :func:`get_presence` returns a page, :func:`get_presence_state` one entry per
user and counts.

While the backend is unreachable the tracker keeps its local view, stops writing, and the
heartbeat rewrites the whole view (and announces it again) once the backend answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import Counter
from typing import TYPE_CHECKING, Any

from . import messaging
from .backends import BackendUnavailable, get_backend
from .conf import wscommands_settings
from .presence_diffs import PresenceDiffs, user_key
from .protocol import decode, encode

if TYPE_CHECKING:
    from .connection import Connection
    from .hub import Hub

logger = logging.getLogger("wscommands.layer")

#: The keys of each presence entry, in the agreed order.
FIELDS = ("connection_id", "user_id", "username", "connected_since")
#: Heartbeat interval while the backend is unreachable (seconds).
RETRY_INTERVAL = 1.0
#: Seconds after a process's heartbeat expired before a live process reaps it.
REAP_MARGIN = 0.05
#: The push event that carries presence diffs.
DIFF_EVENT = "presence_diff"

#: Members of this group receive the server-wide presence events (``"group": null``):
#: ``await connection.join(PRESENCE_GROUP)``. Joining or leaving it is not announced.
PRESENCE_GROUP = "wscommands.presence"


# Reading ------------------------------------------------------------------------------------

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


_snapshots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Snapshot] = (
    weakref.WeakKeyDictionary()
)
_reads: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task] = (
    weakref.WeakKeyDictionary()
)


async def _snapshot() -> _Snapshot:
    """A read of every live entry at most READ_MAX_AGE old; concurrent callers share one."""
    loop = asyncio.get_running_loop()
    snapshot = _snapshots.get(loop)
    if snapshot is not None and loop.time() - snapshot.taken < READ_MAX_AGE:
        return snapshot
    task = _reads.get(loop)
    if task is None or task.done():
        task = _reads[loop] = loop.create_task(_fetch_snapshot(loop))
    # shield: one caller giving up must not cancel the read the others wait for.
    return await asyncio.shield(task)


async def _fetch_snapshot(loop: asyncio.AbstractEventLoop) -> _Snapshot:
    texts = await get_backend().presence_entries()
    snapshot = _snapshots[loop] = _Snapshot([decode(text) for text in texts], loop.time())
    return snapshot


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
    return connection_id.rpartition("~")[0]


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


def _as_write(batch: dict[str, dict[str, Any] | None]) -> tuple[dict[str, str], list[str]]:
    """A batch of changes as ``presence_write``'s entries to write and ids to remove."""
    entries = {cid: encode(entry) for cid, entry in batch.items() if entry is not None}
    return entries, [cid for cid, entry in batch.items() if entry is None]


# Tracking -----------------------------------------------------------------------------------


class PresenceTracker:
    """One process's connections in the presence store, and the presence events.

    Every method the hub and consumer call is synchronous: it updates the local view and
    leaves the backend write and the events to background tasks. Writes go one batch at a
    time (a lock), in the order changes happened, and a full rewrite never races with a
    batch; a burst of handshakes costs a few Redis calls, not one round trip each.
    """

    def __init__(self, hub: Hub):
        self.hub = hub
        self.entries: dict[str, dict[str, Any]] = {}
        self.diffs = PresenceDiffs()
        self._lock = asyncio.Lock()
        self._unsynced = False
        # Changes not written yet: connection id -> its entry, or None to remove it.
        self._pending: dict[str, dict[str, Any] | None] = {}
        # Anonymous local connections per group (None: all of them), for guest counts.
        self._guests: Counter[str | None] = Counter()
        self._writer: asyncio.Task | None = None
        self._sender: asyncio.Task | None = None
        self._last_sent = float("-inf")

    # What the hub and consumer report ------------------------------------------------------

    def connected(self, connection: Connection) -> None:
        """Record a new connection (after its user is known) and announce it."""
        entry = self._entry(connection, since=time.time())
        self._record(entry)
        self._arrive(None, entry)

    def disconnected(self, connection: Connection) -> None:
        """Forget a connection; it leaves its groups and the server."""
        entry = self.entries.get(connection.id)
        if entry is None:
            return
        self._record(None, remove=connection.id)
        for group in (*entry["groups"], None):
            self._depart(group, entry)

    def joined(self, connection: Connection, group: str) -> None:
        """Record that a tracked connection joined ``group`` and tell the group."""
        entry = self.changed(connection)
        if entry is not None:
            self._arrive(group, entry)

    def left(self, connection: Connection, group: str) -> None:
        """Record that a tracked connection left ``group`` and tell the group."""
        old = self.entries.get(connection.id)
        if self.changed(connection) is not None:
            self._depart(group, old)

    def changed(self, connection: Connection) -> dict[str, Any] | None:
        """Rewrite a tracked connection's entry (groups or user changed); None if untracked.

        A change of user is announced as the old identity leaving and the new arriving.
        """
        old = self.entries.get(connection.id)
        if old is None:
            return None
        entry = self._entry(connection, since=old["connected_since"])
        self._record(entry)
        if entry["user_id"] != old["user_id"]:
            for group in (*old["groups"], None):
                if group is None or group in entry["groups"]:
                    self._depart(group, old)
                    self._arrive(group, entry)
        return entry

    # Store --------------------------------------------------------------------------------

    @staticmethod
    def _entry(connection: Connection, since: float) -> dict[str, Any]:
        user = connection.user if connection.is_authenticated() else None
        return {
            "connection_id": connection.id,
            "user_id": user.pk if user is not None else None,
            "username": user.get_username() if user is not None else None,
            "connected_since": since,
            "groups": sorted(connection.groups),
        }

    def _record(self, entry: dict[str, Any] | None, remove: str | None = None) -> None:
        if entry is not None:
            self.entries[entry["connection_id"]] = entry
            self._pending[entry["connection_id"]] = entry
        if remove is not None:
            self.entries.pop(remove, None)
            self._pending[remove] = None
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(
                self._write_pending(), name="wscommands-presence-write"
            )

    async def _write_pending(self) -> None:
        async with self._lock:
            # Changes made while a batch is in flight go out with the next one.
            while self._pending and not self._unsynced and self.hub.channel is not None:
                batch, self._pending = self._pending, {}
                try:
                    await get_backend().presence_write(
                        self.hub.channel, wscommands_settings.PRESENCE_TTL, *_as_write(batch)
                    )
                except BackendUnavailable as exc:  # the heartbeat will write the whole view
                    self._unsynced = True
                    logger.warning("presence not recorded (%s); will retry", exc)
                except Exception:
                    logger.exception("presence write failed")
                    self._unsynced = True

    async def flushed(self) -> None:
        """Wait until the changes recorded so far were written (or found unwritable)."""
        writer = self._writer
        if writer is not None:
            await asyncio.shield(writer)

    async def heartbeat(self, process: str) -> None:
        """Renew this process's heartbeat (with the changes not written yet).

        When the store lost entries (Redis restarted empty, or this process was reaped
        after missing heartbeats) or the last write failed, rewrite the whole view and
        announce it again: watchers may have been told these connections left.
        """
        ttl = wscommands_settings.PRESENCE_TTL
        async with self._lock:
            recovering = self._unsynced
            batch, self._pending = self._pending, {}
            expected = len(self.entries)  # what the store holds after this write, if intact
            try:
                if recovering:
                    count = await get_backend().presence_write(
                        process, ttl, self._encoded(), replace=True
                    )
                else:
                    count = await get_backend().presence_write(process, ttl, *_as_write(batch))
                if count != expected:
                    await get_backend().presence_write(process, ttl, self._encoded(), replace=True)
                    recovering = True
            except BackendUnavailable as exc:
                if not self._unsynced:
                    logger.warning("presence heartbeat failed (%s); will retry", exc)
                self._unsynced = True
                return
            except Exception:  # e.g. a READONLY replica after a failover: retry, never stop
                if not self._unsynced:
                    logger.exception("presence heartbeat failed; will retry")
                self._unsynced = True
                return
            self._unsynced = False
        if recovering:
            self._announce_all()

    async def reap(self) -> float | None:
        """Announce the leave of every connection of processes that died; None if unknown.

        Returns the seconds until the next heartbeat of a live process expires, so the
        caller can look again just then.
        """
        try:
            dead, next_expiry = await get_backend().presence_reap()
        except BackendUnavailable:
            return None
        except Exception:  # the loop must go on: the next heartbeat reaps again
            logger.exception("presence reaping failed; will retry")
            return None
        for process, texts in dead.items():
            logger.info("presence: process %s died; %d connection(s) left", process, len(texts))
            if not wscommands_settings.PRESENCE_EVENTS:
                continue
            for text in texts:
                entry = decode(text)
                for group in (*entry.get("groups", ()), None):
                    if group == PRESENCE_GROUP:
                        continue
                    if entry.get("user_id") is None:
                        self.diffs.guests(group, process, 0)
                    else:
                        self.diffs.leave(
                            group, entry["connection_id"], entry["user_id"], entry["username"]
                        )
        if dead:
            self._send_soon()
        return next_expiry

    async def run(self, process: str) -> None:
        """The heartbeat and reaper loop the hub runs while it has connections."""
        loop = asyncio.get_running_loop()
        beat_at = loop.time() + wscommands_settings.PRESENCE_TTL / 3
        reap_at: float | None = loop.time()  # dead processes from before this one started
        while True:
            wake = beat_at if reap_at is None else min(beat_at, reap_at)
            await asyncio.sleep(max(0.01, wake - loop.time()))
            if loop.time() >= beat_at:
                await self.heartbeat(process)
                interval = wscommands_settings.PRESENCE_TTL / 3
                beat_at = loop.time() + (
                    min(interval, RETRY_INTERVAL) if self._unsynced else interval
                )
            next_expiry = await self.reap()
            reap_at = None if next_expiry is None else loop.time() + next_expiry + REAP_MARGIN

    async def clear(self, process: str) -> None:
        """Remove this process from the store (its hub stopped: no connections left)."""
        await self._send_now(process)
        self.entries.clear()
        self._pending.clear()
        self._guests.clear()
        async with self._lock:
            self._unsynced = False
            try:
                await get_backend().presence_clear(process)
            except BackendUnavailable:  # the heartbeat key expires on its own
                logger.warning("could not clear presence of %s", process)

    def _encoded(self) -> dict[str, str]:
        return {connection_id: encode(entry) for connection_id, entry in self.entries.items()}

    # Events -------------------------------------------------------------------------------

    def _arrive(self, group: str | None, entry: dict[str, Any]) -> None:
        self._announce(group, entry, +1)

    def _depart(self, group: str | None, entry: dict[str, Any]) -> None:
        self._announce(group, entry, -1)

    def _announce(self, group: str | None, entry: dict[str, Any], step: int) -> None:
        if entry["user_id"] is None:
            # Counted even with events off, so turning them on needs no rebuild.
            self._guests[group] += step
            if self._guests[group] <= 0:
                del self._guests[group]
        if not wscommands_settings.PRESENCE_EVENTS or group == PRESENCE_GROUP:
            return
        process = self.hub.channel
        if process is None:
            return
        if entry["user_id"] is None:
            self.diffs.guests(group, process, self._guests[group])
        elif step > 0:
            self.diffs.join(group, entry["connection_id"], entry["user_id"], entry["username"])
        else:
            self.diffs.leave(group, entry["connection_id"], entry["user_id"], entry["username"])
        self._send_soon()

    def _announce_all(self) -> None:
        """Announce every local connection again (after the store lost them)."""
        if not wscommands_settings.PRESENCE_EVENTS or self.hub.channel is None:
            return
        process = self.hub.channel
        for entry in self.entries.values():
            for group in (*entry["groups"], None):
                if group == PRESENCE_GROUP:
                    continue
                if entry["user_id"] is None:
                    self.diffs.guests(group, process, self._guests[group])
                else:
                    self.diffs.join(
                        group, entry["connection_id"], entry["user_id"], entry["username"]
                    )
        self._send_soon()

    def _send_soon(self) -> None:
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(
                self._send_loop(), name="wscommands-presence-events"
            )

    async def _send_loop(self) -> None:
        # At most one diff per group every PRESENCE_EVENT_INTERVAL: the first change after
        # a quiet spell goes out at once, a burst is merged.
        loop = asyncio.get_running_loop()
        while self.diffs:
            wait = self._last_sent + wscommands_settings.PRESENCE_EVENT_INTERVAL - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._last_sent = loop.time()
            await self._send_now(self.hub.channel)

    async def _send_now(self, process: str | None) -> None:
        for group, payload in self.diffs.take():
            try:
                # Server-wide events go to the connections that asked for them, not to
                # everyone: a client that never asked should not find pushes between replies.
                await messaging.send_to_group(
                    group or PRESENCE_GROUP, {DIFF_EVENT: payload}, history=False
                )
            except Exception:  # events are best effort: never fail a connect or a join
                logger.warning("presence diff for %s not sent (%s)", group, process, exc_info=True)
