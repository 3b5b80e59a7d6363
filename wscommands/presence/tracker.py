"""Presence tracking: this process's connections in the presence store, kept alive.

Each process's :class:`PresenceTracker` (owned by its hub) keeps one entry per local
connection and copies it to the backend *in the background*: connecting, joining and
leaving never wait on Redis, and a stalled Redis delays nothing but presence itself. The
tracker renews the process's heartbeat every ``PRESENCE_TTL / 3`` seconds; readers
(:mod:`.presence`) skip processes whose heartbeat is older than ``PRESENCE_TTL``.

A process killed without cleaning up is *reaped* by a live one as soon as its heartbeat
expires: the reaper takes its entries atomically (so exactly one process does it) and
announces that they left, so watchers see no ghosts. A reaper learns of other processes
when it wakes (at its own heartbeat, and when the next known heartbeat expires): one that
came and went between two wakes is reaped at the next, its entries kept until then. No
failure stops the loop: an unexpected error is logged, and the next wake tries again.
Arrivals and departures are announced through :class:`~.presence_events.PresenceEvents`. The
leave of a signed-in connection that closed is held ``PRESENCE_GRACE`` seconds (its entry kept
in the store), so a user back within it (a restart, a blip) is never seen leaving; a hub that
stops hands its held leaves to the store, reaped (and announced) when the grace is over.

While the backend is unreachable the tracker keeps its local view, stops writing, and the
heartbeat rewrites the whole view (and announces it again) once the backend answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ..backends import BackendUnavailable, presence_store
from ..conf import wscommands_settings
from ..delivery.peer import Peer
from ..wire.jsoncodec import encode
from .events import LocalProcess, PresenceEvents

logger = logging.getLogger("wscommands.layer")

#: Heartbeat interval while the backend is unreachable (seconds).
RETRY_INTERVAL = 1.0
#: Seconds after a process's heartbeat expired before a live process reaps it.
REAP_MARGIN = 0.05


def _as_write(batch: dict[str, dict[str, Any] | None]) -> tuple[dict[str, str], list[str]]:
    """A batch of changes as ``presence_write``'s entries to write and ids to remove."""
    entries = {cid: encode(entry) for cid, entry in batch.items() if entry is not None}
    return entries, [cid for cid, entry in batch.items() if entry is None]


class PresenceTracker:
    """One process's connections in the presence store; it reports their comings and goings
    to its :attr:`events`.

    Every method the hub and consumer call is synchronous: it updates the local view and
    leaves the backend write and the events to background tasks. Writes go one batch at a
    time (a lock), in the order changes happened, and a full rewrite never races with a
    batch; a burst of handshakes costs a few Redis calls, not one round trip each.
    """

    def __init__(self, hub: LocalProcess):
        self.hub = hub
        self.entries: dict[str, dict[str, Any]] = {}
        self.events = PresenceEvents(hub)
        self._lock = asyncio.Lock()
        self._unsynced = False
        # Changes not written yet: connection id -> its entry, or None to remove it.
        self._pending: dict[str, dict[str, Any] | None] = {}
        self._writer: asyncio.Task | None = None
        # Signed-in connections that closed, their leave held for PRESENCE_GRACE: id ->
        # (entry, loop time the grace ends, the timer that announces it). Still in the store.
        self.departing: dict[str, tuple[dict[str, Any], float, asyncio.TimerHandle]] = {}

    # What the hub and consumer report ------------------------------------------------------

    def connected(self, connection: Peer) -> None:
        """Record a new connection (after its user is known) and announce it."""
        entry = self._entry(connection, since=time.time())
        self._record(entry)
        self.events.arrived(None, entry)

    def disconnected(self, connection: Peer) -> None:
        """Forget a connection; it leaves its groups and the server.

        A signed-in one leaves ``PRESENCE_GRACE`` seconds later (its entry stays in the store
        meanwhile): a user back within the grace, on any process, is announced joining (a
        new connection of a user still present) before the old connection leaves, so
        watchers never see that user leave and join again.
        """
        entry = self.entries.get(connection.id)
        if entry is None:
            return
        grace = wscommands_settings.PRESENCE_GRACE
        if entry["user_id"] is not None and grace > 0:
            del self.entries[connection.id]
            loop = asyncio.get_running_loop()
            timer = loop.call_later(grace, self._grace_over, connection.id)
            self.departing[connection.id] = (entry, loop.time() + grace, timer)
            return
        self._depart(entry)

    def _grace_over(self, connection_id: str) -> None:
        entry, _, _ = self.departing.pop(connection_id)
        self._depart(entry)

    def _depart(self, entry: dict[str, Any]) -> None:
        self._record(None, remove=entry["connection_id"])
        for group in (*entry["groups"], None):
            self.events.departed(group, entry)

    def joined(self, connection: Peer, group: str) -> None:
        """Record that a tracked connection joined ``group`` and tell the group."""
        entry = self.changed(connection)
        if entry is not None:
            self.events.arrived(group, entry)

    def left(self, connection: Peer, group: str) -> None:
        """Record that a tracked connection left ``group`` and tell the group."""
        old = self.entries.get(connection.id)
        if self.changed(connection) is not None and old is not None:
            self.events.departed(group, old)

    def changed(self, connection: Peer) -> dict[str, Any] | None:
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
                    self.events.departed(group, old)
                    self.events.arrived(group, entry)
        return entry

    # Store --------------------------------------------------------------------------------

    @staticmethod
    def _entry(connection: Peer, since: float) -> dict[str, Any]:
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
                    await presence_store().presence_write(
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
            # What the store holds after this write, if intact (held leaves are still there).
            expected = len(self.entries) + len(self.departing)
            try:
                if recovering:
                    count = await presence_store().presence_write(
                        process, ttl, self._encoded(), replace=True
                    )
                else:
                    count = await presence_store().presence_write(process, ttl, *_as_write(batch))
                if count != expected:
                    await presence_store().presence_write(
                        process, ttl, self._encoded(), replace=True
                    )
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
            self.events.announce_all(self.entries.values())

    async def reap(self) -> float | None:
        """Announce the leave of every connection of processes that died; None if unknown.

        Returns the seconds until the next heartbeat of a live process expires, so the
        caller can look again just then.
        """
        try:
            dead, next_expiry = await presence_store().presence_reap()
        except BackendUnavailable:
            return None
        except Exception:  # the loop must go on: the next heartbeat reaps again
            logger.exception("presence reaping failed; will retry")
            return None
        for process, texts in dead.items():
            logger.info("presence: process %s died; %d connection(s) left", process, len(texts))
            self.events.died(process, texts)
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
        """Remove this process from the store (its hub stopped: no connections left).

        Leaves still held (``PRESENCE_GRACE``) are handed to the store instead: the process
        keeps only those entries, with a heartbeat that expires when the last grace ends, and
        a live process reaps them then and announces the leaves (after any join of the same
        users elsewhere: a restart shows no leave/join pair).

        The local state goes first: a stop cut short (a stalled Redis) leaves nothing behind
        for the hub's next start, and the store's copy then expires on its own.
        """
        now = asyncio.get_running_loop().time()
        held = {cid: encode(entry) for cid, (entry, _, _) in self.departing.items()}
        grace_left = max((due - now for _, due, _ in self.departing.values()), default=0.0)
        for _, _, timer in self.departing.values():
            timer.cancel()
        self.departing.clear()
        self.entries.clear()
        self._pending.clear()
        self._unsynced = False
        await self.events.close(process)
        async with self._lock:
            try:
                if held:
                    ttl = max(grace_left, REAP_MARGIN)
                    await presence_store().presence_write(process, ttl, held, replace=True)
                else:
                    await presence_store().presence_clear(process)
            except BackendUnavailable:  # the heartbeat key expires on its own
                logger.warning("could not clear presence of %s", process)

    def _encoded(self) -> dict[str, str]:
        held = {cid: encode(entry) for cid, (entry, _, _) in self.departing.items()}
        return held | {cid: encode(entry) for cid, entry in self.entries.items()}
