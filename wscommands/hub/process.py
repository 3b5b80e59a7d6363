"""The per-process Hub: this process's end of the fan-out described in :mod:`.messaging`.

One channel-layer channel per process, joined to the groups its local connections need;
messages arrive once per process and are written to each local recipient. Its memberships
in the layer's groups are kept alive by a :class:`~.layergroups.LayerGroups`, the process's
presence entries by a :class:`~.presence_tracker.PresenceTracker`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from channels.layers import BaseChannelLayer
from django.utils.module_loading import import_string

from .._internal.resilience import best_effort, cancel_and_wait
from .._internal.runtime import RUNTIME, Part
from ..conf import wscommands_settings
from ..delivery.fanout import write_all
from ..delivery.layergroups import CANARY_TYPE, LayerGroups
from ..delivery.messaging import (
    MESSAGE_TYPE,
    all_group_name,
    get_layer,
    group_channel_name,
    user_group_name,
)
from ..delivery.peer import ID_SEPARATOR, Peer, split_id
from ..delivery.sessionend import SESSION_ENDED_TYPE, close_ended
from ..observability import logs, metrics
from ..ops import report as ops
from ..presence.tracker import PresenceTracker
from ..streams.cursor import Push
from ..wire.exceptions import Unavailable

logger = logging.getLogger("wscommands.layer")

#: Sent by a hub to its own channel to end its receive loop.
STOP_TYPE = "wscommands.stop"
#: Seconds between retries while the channel layer fails.
RETRY_DELAY = 0.5
#: Seconds a stop cut short still gives its tasks to end.
STOP_GRACE = 0.5


class Hub:
    """This process's end of the fan-out: one channel, the local connections, their groups.

    It sees connections only through :class:`~.peer.Peer`. ``WSCOMMANDS["HUB_CLASS"]`` names
    a subclass to use instead (e.g. to observe or route deliveries differently).
    """

    def __init__(self, layer: BaseChannelLayer):
        self.layer = layer
        self.channel: str | None = None
        self.connections: dict[str, Peer] = {}
        self.groups: dict[str, set[str]] = {}
        self.users: dict[Any, set[str]] = {}
        self._counter = 0
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []
        # When starting last failed (the layer unreachable): later handshakes fail fast.
        self._start_failed_at = -RETRY_DELAY
        self.layer_groups = LayerGroups(layer)
        self.presence = PresenceTracker(self)

    # Membership ---------------------------------------------------------------------------

    async def add(self, peer: Peer) -> str:
        """Register a connection and return its id; starts the hub on first use.

        The caller sets ``peer.id`` to the id returned before anything else uses the hub
        with this peer.
        """
        async with self._lock:
            if self.channel is None:
                await self._start()
            self._counter += 1
            local_id = str(self._counter)
            self.connections[local_id] = peer
            return f"{self.channel}{ID_SEPARATOR}{local_id}"

    async def remove(self, peer: Peer) -> None:
        """Forget a connection, its groups and user; stops the hub when none is left."""
        local_id = split_id(peer.id)[1]
        if self.connections.pop(local_id, None) is None:
            return
        for group in list(peer.groups):
            await self._discard(self.groups, group, local_id, group_channel_name(group))
        if peer.user_pk is not None:
            pk = peer.user_pk
            await self._discard(self.users, pk, local_id, user_group_name(pk))
        async with self._lock:
            if not self.connections and self.channel is not None:
                await self._stop()

    async def join(self, peer: Peer, group: str) -> None:
        """Add a local connection to a group."""
        local_id = split_id(peer.id)[1]
        await self._add(self.groups, group, local_id, group_channel_name(group))
        self.presence.joined(peer, group)

    async def leave(self, peer: Peer, group: str) -> None:
        """Remove a local connection from a group."""
        local_id = split_id(peer.id)[1]
        await self._discard(self.groups, group, local_id, group_channel_name(group))
        self.presence.left(peer, group)

    async def set_user(self, peer: Peer, old_pk: Any, new_pk: Any) -> None:
        """Move a connection from one user's index to another's (None: anonymous).

        Does not wait for the layer: the user's channel-layer membership follows in the
        background (handshakes and ``authenticate`` never wait on Redis).
        """
        if old_pk == new_pk:
            return
        local_id = split_id(peer.id)[1]
        if old_pk is not None:
            await self._discard(self.users, old_pk, local_id, user_group_name(old_pk))
        if new_pk is not None:
            await self._add(self.users, new_pk, local_id, user_group_name(new_pk), wait=False)
        self.presence.changed(peer)

    async def _add(
        self, index: dict, key: Any, local_id: str, channel_group: str, wait: bool = True
    ) -> None:
        members = index.setdefault(key, set())
        first = not members
        members.add(local_id)
        if first and self.channel is not None:  # None: stopping; the next start re-joins
            added = self.layer_groups.change(True, channel_group, self.channel)
            if wait:
                await added

    async def _discard(self, index: dict, key: Any, local_id: str, channel_group: str) -> None:
        members = index.get(key)
        if not members or local_id not in members:
            return
        members.discard(local_id)
        if not members:
            del index[key]
            if self.channel is not None:
                await self.layer_groups.change(False, channel_group, self.channel)

    # Life cycle ---------------------------------------------------------------------------

    async def _start(self) -> None:
        """Take a channel and start the hub's tasks; :class:`Unavailable` if the layer cannot
        give a channel (a Pub/Sub layer subscribes in Redis for it)."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._start_failed_at < RETRY_DELAY:
            raise Unavailable("the message layer cannot be reached")
        try:
            # The default prefix on purpose: channels_redis reads every process-local channel
            # through one list named after that prefix; a channel with another prefix is never
            # read while a consumer's channel is being received.
            async with asyncio.timeout(wscommands_settings.CHANNEL_LAYER_TIMEOUT):
                self.channel = await self.layer.new_channel()
        except Exception as exc:
            self._start_failed_at = loop.time()
            logger.warning(
                "channel layer unreachable (%s): new connections are closed with 4503 until "
                "it answers",
                type(exc).__name__,
            )
            raise Unavailable("the message layer cannot be reached") from exc
        self._tasks = [
            logs.process_task(self._receive_loop(self.channel), "wscommands-hub"),
            logs.process_task(
                self.layer_groups.keep_alive(self.channel, self._memberships),
                "wscommands-hub-refresh",
            ),
            logs.process_task(self.presence.run(self.channel), "wscommands-presence"),
            logs.process_task(ops.run(self, self.channel), "wscommands-ops"),
        ]
        # Awaited (bounded by CHANNEL_LAYER_TIMEOUT) once per hub start, after the receive
        # loop runs (a Pub/Sub layer confirms a subscription through it), so that the first
        # connections receive broadcasts from the moment their handshake completes, as the
        # protocol promises; later handshakes find the hub started and never wait on Redis.
        await self.layer_groups.change(True, all_group_name(), self.channel)

    async def _stop(self) -> None:
        channel, self.channel = self.channel, None
        assert channel is not None  # only a started hub is stopped
        receiver, *others = self._tasks
        self._tasks = []
        # The next handshake waits for this stop (it holds the hub's lock), then for a new
        # channel (up to CHANNEL_LAYER_TIMEOUT), all within daphne's 5 s handshake timeout:
        # everything here that talks to the layer or the backend shares one deadline of half
        # that timeout, not that for each call. What is left undone there (presence entries,
        # group memberships) expires on its own.
        timeout = wscommands_settings.CHANNEL_LAYER_TIMEOUT / 2
        try:
            async with asyncio.timeout(timeout):
                await cancel_and_wait(others, timeout)
                # Ask the receive loop to finish by itself rather than cancel it: a cancelled
                # channels_redis receive() can leave the layer's receive lock held for good,
                # and every later receive (so every later handshake) then waits forever.
                if await best_effort(self.layer.send(channel, {"type": STOP_TYPE}), "stop"):
                    await asyncio.wait([receiver], timeout=timeout)
                await self.presence.clear(channel)
                # If these fail, the layer's own group expiry cleans up.
                await self.layer_groups.change(False, all_group_name(), channel)
                await self.layer_groups.stopped(channel)
        except TimeoutError:
            logger.warning(
                "hub stop cut short after %.1f s (the channel layer or Redis is slow); what "
                "it left there expires on its own",
                timeout,
            )
        await cancel_and_wait([receiver, *others], STOP_GRACE)

    def _memberships(self) -> list[str]:
        canary = self.layer_groups.canary_group
        return (
            [all_group_name(), *([canary] if canary else [])]
            + [group_channel_name(g) for g in self.groups]
            + [user_group_name(pk) for pk in self.users]
        )

    async def _receive_loop(self, channel: str) -> None:
        while True:
            try:
                message = await self.layer.receive(channel)
            except Exception as exc:  # Redis down: memberships may be lost with its data
                logger.warning("channel layer receive failed (%s)", type(exc).__name__)
                self.layer_groups.layer_failed()
                await asyncio.sleep(RETRY_DELAY)
                continue
            if message.get("type") == STOP_TYPE:
                return
            if message.get("type") == CANARY_TYPE:
                self.layer_groups.canary_returned()
                continue
            if message.get("type") == SESSION_ENDED_TYPE:
                await close_ended(self.connections.values(), message)
                continue
            try:
                await self.deliver(message)
            except Exception:
                logger.exception("delivering a message failed")

    # Delivery -----------------------------------------------------------------------------

    def _targets(self, message: dict[str, Any]) -> Iterable[str]:
        target = message.get("target")
        if target == "all":
            return list(self.connections)
        if target == "group":
            return list(self.groups.get(str(message.get("key")), ()))
        if target == "user":
            return list(self.users.get(message.get("key"), ()))
        if target == "ids":
            return message.get("key") or ()
        return ()

    async def deliver(self, message: dict[str, Any]) -> None:
        """Write a received message's text to each of its local recipients."""
        if message.get("type") != MESSAGE_TYPE:
            return
        connections = self.connections
        recipients = [
            peer
            for local_id in self._targets(message)
            if (peer := connections.get(local_id)) is not None
        ]
        started = time.perf_counter()
        push = Push.from_message(message)
        if push is not None:
            await write_all(recipients, push.deliver)
        else:
            text, exclude = message["text"], message.get("exclude")
            recipients = [peer for peer in recipients if peer.id != exclude]
            await write_all(recipients, lambda peer: peer.push_text(text))
        elapsed = time.perf_counter() - started
        metrics.delivered(message.get("target", ""), len(recipients), elapsed, message.get("sent"))


def hub_class() -> type[Hub]:
    """The class named by ``WSCOMMANDS["HUB_CLASS"]`` (checked at start-up)."""
    return import_string(wscommands_settings.HUB_CLASS)


HUB: Part[Hub] = Part("hub", lambda: hub_class()(get_layer()))


def get_hub() -> Hub:
    """The hub of the running event loop (one per process in a server), made on first use."""
    return RUNTIME.get(HUB)
