"""Presence events: the ``presence_diff`` pushes of one process (``WSCOMMANDS["PRESENCE_EVENTS"]``).

The :class:`~.presence_tracker.PresenceTracker` reports each arrival and departure; they are
coalesced (:mod:`.presence_diffs`) and sent to the group concerned, at most one diff per group
and process every ``PRESENCE_EVENT_INTERVAL`` seconds, with signed-in users listed and
anonymous connections counted. Server-wide events go to the members of :data:`PRESENCE_GROUP`.
Events are best effort: sending one never fails a connect or a join.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterable
from typing import Any, Protocol

from ..conf import wscommands_settings
from ..delivery import messaging
from ..wire.jsoncodec import decode
from .diffs import PresenceDiffs


class LocalProcess(Protocol):
    """What presence needs of its process's hub: the process channel, None until started."""

    channel: str | None


logger = logging.getLogger("wscommands.layer")

#: The push event that carries presence diffs.
DIFF_EVENT = "presence_diff"

#: Members of this group receive the server-wide presence events (``"group": null``):
#: ``await connection.join(PRESENCE_GROUP)``. Joining or leaving it is not announced.
PRESENCE_GROUP = "wscommands.presence"


class PresenceEvents:
    """One process's presence diffs, merged until sent, and its anonymous connections counted.

    Every method but :meth:`close` is synchronous: the diffs go out from a background task.
    """

    def __init__(self, hub: LocalProcess):
        self.hub = hub
        self.diffs = PresenceDiffs()
        # Anonymous local connections per group (None: all of them), for guest counts.
        self._guests: Counter[str | None] = Counter()
        self._sender: asyncio.Task | None = None
        self._last_sent = float("-inf")

    def arrived(self, group: str | None, entry: dict[str, Any]) -> None:
        """A connection (its presence entry) joined ``group``, or the server (None)."""
        self._announce(group, entry, +1)

    def departed(self, group: str | None, entry: dict[str, Any]) -> None:
        """A connection (its presence entry) left ``group``, or the server (None)."""
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

    def announce_all(self, entries: Iterable[dict[str, Any]]) -> None:
        """Announce every local connection again (after the store lost them)."""
        if not wscommands_settings.PRESENCE_EVENTS or self.hub.channel is None:
            return
        process = self.hub.channel
        for entry in entries:
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

    def died(self, process: str, texts: Iterable[str]) -> None:
        """Announce the leave of the connections (entries as JSON text) of a dead process."""
        if wscommands_settings.PRESENCE_EVENTS:
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
        self._send_soon()

    async def close(self, process: str | None) -> None:
        """The hub stopped: forget the guest counts, and send the diffs not sent yet now."""
        self._guests.clear()
        await self._send_now(process)

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
