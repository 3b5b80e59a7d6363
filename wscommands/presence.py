"""Presence: who is connected, on every process, and who is in which group.

Each process's :class:`PresenceTracker` (owned by its hub) writes one entry per local
connection to the backend, under the process's name, and renews the process's heartbeat
every ``PRESENCE_TTL / 3`` seconds. Readers skip processes whose heartbeat is older than
``PRESENCE_TTL`` and delete them, so a process killed without cleaning up drops out of
presence within ``PRESENCE_TTL`` seconds.

While the backend is unreachable the tracker keeps its local view, stops writing, and the
heartbeat rewrites the whole view once the backend answers again: connecting and joining
never fail because presence could not be recorded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from . import messaging
from .backends import BackendUnavailable, get_backend
from .conf import wscommands_settings
from .protocol import decode, encode

if TYPE_CHECKING:
    from .connection import Connection
    from .hub import Hub

logger = logging.getLogger("wscommands.layer")

#: The keys of each presence entry, in the agreed order.
FIELDS = ("connection_id", "user_id", "username", "connected_since")
#: Heartbeat interval while the backend is unreachable (seconds).
RETRY_INTERVAL = 1.0


#: Members of this group receive the server-wide presence events (``"group": null``):
#: ``await connection.join(PRESENCE_GROUP)``. Joining or leaving it is not announced.
PRESENCE_GROUP = "wscommands.presence"


async def get_presence(group: str | None = None) -> list[dict[str, Any]]:
    """Every live connection on every process, or the members of ``group``.

    Each entry is ``{"connection_id", "user_id", "username", "connected_since"}`` (unix
    seconds), sorted by ``connected_since``. Raises ValueError for an invalid group name and
    BackendUnavailable when Redis cannot be reached.
    """
    if group is not None:
        messaging.group_channel_name(group)
    entries = [decode(text) for text in await get_backend().presence_entries()]
    if group is not None:
        entries = [entry for entry in entries if group in entry.get("groups", ())]
    result = [{name: entry.get(name) for name in FIELDS} for entry in entries]
    result.sort(key=lambda entry: (entry["connected_since"], entry["connection_id"]))
    return result


def _event(event: str, group: str | None, entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "presence": {
            "event": event,
            "group": group,
            "connection_id": entry["connection_id"],
            "user_id": entry["user_id"],
            "username": entry["username"],
        }
    }


class PresenceTracker:
    """One process's connections in the presence store, and the presence events.

    Writes go one at a time (a lock) so the store sees them in the order they happened
    here, and a full rewrite never races with a single update. Changes made while a write
    is in flight are sent together by the next one: a burst of handshakes costs a few
    Redis calls, not one round trip each, queued behind one another.
    """

    def __init__(self, hub: Hub):
        self.hub = hub
        self.entries: dict[str, dict[str, Any]] = {}
        self._lock = asyncio.Lock()
        self._stale = False
        # Changes not written yet: connection id -> its entry, or None to remove it.
        self._pending: dict[str, dict[str, Any] | None] = {}

    # What the hub and consumer report ------------------------------------------------------

    async def connected(self, connection: Connection) -> None:
        """Record a new connection (after its user is known) and announce it."""
        entry = self._entry(connection, since=time.time())
        await self._write(entry)
        await self._announce("join", None, entry)

    async def disconnected(self, connection: Connection) -> None:
        """Forget a connection; it leaves its groups and the server."""
        entry = self.entries.get(connection.id)
        if entry is None:
            return
        await self._write(None, remove=connection.id)
        for group in entry["groups"]:
            await self._announce("leave", group, entry)
        await self._announce("leave", None, entry)

    async def joined(self, connection: Connection, group: str) -> None:
        """Record that a tracked connection joined ``group`` and tell the group."""
        entry = await self.changed(connection)
        if entry is not None:
            await self._announce("join", group, entry)

    async def left(self, connection: Connection, group: str) -> None:
        """Record that a tracked connection left ``group`` and tell the group."""
        entry = await self.changed(connection)
        if entry is not None:
            await self._announce("leave", group, entry)

    async def changed(self, connection: Connection) -> dict[str, Any] | None:
        """Rewrite a tracked connection's entry (groups or user changed); None if untracked."""
        old = self.entries.get(connection.id)
        if old is None:
            return None
        entry = self._entry(connection, since=old["connected_since"])
        await self._write(entry)
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

    async def _write(self, entry: dict[str, Any] | None, remove: str | None = None) -> None:
        if entry is not None:
            self.entries[entry["connection_id"]] = entry
            self._pending[entry["connection_id"]] = entry
        if remove is not None:
            self.entries.pop(remove, None)
            self._pending[remove] = None
        async with self._lock:
            # Returns once this change is in the store: written now, or already written
            # by a caller that held the lock before us and took it along.
            batch, self._pending = self._pending, {}
            process = self.hub.channel
            if not batch or self._stale or process is None:
                return  # (stale: the heartbeat will write the whole view)
            try:
                await get_backend().presence_write(
                    process,
                    wscommands_settings.PRESENCE_TTL,
                    entries={cid: encode(e) for cid, e in batch.items() if e is not None},
                    remove=[cid for cid, e in batch.items() if e is None],
                )
            except BackendUnavailable as exc:
                self._stale = True
                logger.warning("presence not recorded (%s); will retry", exc)

    async def heartbeat(self, process: str) -> None:
        """Renew this process's heartbeat; rewrite everything if the store lost or missed it."""
        ttl = wscommands_settings.PRESENCE_TTL
        async with self._lock:
            try:
                count = await get_backend().presence_write(
                    process, ttl, self._encoded() if self._stale else None, replace=self._stale
                )
                if count != len(self.entries):  # e.g. Redis restarted empty
                    await get_backend().presence_write(process, ttl, self._encoded(), replace=True)
            except BackendUnavailable as exc:
                if not self._stale:
                    logger.warning("presence heartbeat failed (%s); will retry", exc)
                self._stale = True
            else:
                self._stale = False

    async def run(self, process: str) -> None:
        """The heartbeat loop the hub runs while it has connections."""
        while True:
            interval = wscommands_settings.PRESENCE_TTL / 3
            await asyncio.sleep(min(interval, RETRY_INTERVAL) if self._stale else interval)
            await self.heartbeat(process)

    async def clear(self, process: str) -> None:
        """Remove this process from the store (its hub stopped: no connections left)."""
        self.entries.clear()
        self._pending.clear()
        async with self._lock:
            self._stale = False
            try:
                await get_backend().presence_clear(process)
            except BackendUnavailable:  # the heartbeat key expires on its own
                logger.warning("could not clear presence of %s", process)

    def _encoded(self) -> dict[str, str]:
        return {connection_id: encode(entry) for connection_id, entry in self.entries.items()}

    # Events -------------------------------------------------------------------------------

    async def _announce(self, event: str, group: str | None, entry: dict[str, Any]) -> None:
        if not wscommands_settings.PRESENCE_EVENTS or group == PRESENCE_GROUP:
            return
        message = _event(event, group, entry)
        try:
            # Server-wide events go to the connections that asked for them, not to everyone:
            # a client that never asked should not find pushes between its replies.
            await messaging.send_to_group(group or PRESENCE_GROUP, message, history=False)
        except Exception:  # events are best effort: never fail a connect or a join
            logger.warning("presence event %s/%s not sent", event, group, exc_info=True)
