"""The per-process Hub: this process's end of the fan-out (see delivery.messaging).

One channel-layer channel per process, joined to the groups its local connections need;
messages arrive once per process, are put in offset order (:mod:`.ordering`) and written to
each local recipient. Its layer memberships are kept alive by a ``LayerGroups``, its
presence entries by a ``PresenceTracker``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels.layers import BaseChannelLayer
from django.utils.module_loading import import_string

from .._internal.resilience import best_effort, cancel_and_wait
from .._internal.runtime import RUNTIME, Part
from ..conf import wscommands_settings
from ..delivery.layergroups import CANARY_TYPE, LayerGroups
from ..delivery.messaging import (
    all_group_name,
    get_layer,
    group_channel_name,
    user_group_name,
)
from ..delivery.peer import ID_SEPARATOR, Peer, split_id
from ..delivery.sessionend import SESSION_ENDED_TYPE, close_ended
from ..observability import logs
from ..ops import report as ops
from ..presence.tracker import PresenceTracker
from ..streams.cursor import ALL, group_stream, user_stream
from ..wire.envelope import MESSAGE_TYPE, Envelope
from ..wire.exceptions import Unavailable
from .ordering import OrderedDelivery, local_recipients

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
        # Stream pushes in offset order, once; the positions connections enter streams at.
        self.ordered = OrderedDelivery(self._recipients, self.deliver, self.groups, self.users)
        self.layer_groups = LayerGroups(layer, self.ordered.catch_up)
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
            self.ordered.entered(peer, ALL)
            return f"{self.channel}{ID_SEPARATOR}{local_id}"

    async def remove(self, peer: Peer) -> None:
        """Forget a connection, its groups and user; stops the hub when none is left."""
        local_id = split_id(peer.id)[1]
        if self.connections.pop(local_id, None) is None:
            return
        for group in list(peer.groups):
            await self._discard(
                self.groups, group, local_id, group_channel_name(group), group_stream(group)
            )
        if peer.user_pk is not None:
            pk = peer.user_pk
            await self._discard(self.users, pk, local_id, user_group_name(pk), user_stream(pk))
        async with self._lock:
            if not self.connections and self.channel is not None:
                await self._stop()

    async def join(self, peer: Peer, group: str) -> None:
        """Add a local connection to a group."""
        await self._add(peer, self.groups, group, group_channel_name(group), group_stream(group))
        self.presence.joined(peer, group)

    async def leave(self, peer: Peer, group: str) -> None:
        """Remove a local connection from a group."""
        local_id = split_id(peer.id)[1]
        await self._discard(
            self.groups, group, local_id, group_channel_name(group), group_stream(group)
        )
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
            await self._discard(
                self.users, old_pk, local_id, user_group_name(old_pk), user_stream(old_pk)
            )
        if new_pk is not None:
            name, stream = user_group_name(new_pk), user_stream(new_pk)
            await self._add(peer, self.users, new_pk, name, stream, wait=False)
        self.presence.changed(peer)

    async def _add(
        self, peer: Peer, index: dict, key: Any, channel_group: str, stream: str, wait: bool = True
    ) -> None:
        members = index.setdefault(key, set())
        first = not members
        members.add(split_id(peer.id)[1])
        # One joining while the first member's layer membership and position read are under
        # way waits for them too (shielded: a join cancelled must not cancel them for others).
        ready: asyncio.Future | None = self.ordered.reading(stream)
        if first and self.channel is not None:  # None: stopping; the next start re-joins
            added = self.layer_groups.change(True, channel_group, self.channel)
            # The join returns once the stream's position is read too: pushes published
            # after it are above that position, so the process delivers them.
            ready = self.ordered.follow(stream, added) or added
        self.ordered.entered(peer, stream)
        if ready is not None and wait:
            await asyncio.shield(ready)

    async def _discard(
        self, index: dict, key: Any, local_id: str, channel_group: str, stream: str
    ) -> None:
        members = index.get(key)
        if not members or local_id not in members:
            return
        members.discard(local_id)
        if not members:
            del index[key]
            self.ordered.unfollow(stream)
            if self.channel is not None:
                await self.layer_groups.change(False, channel_group, self.channel)

    # Life cycle ---------------------------------------------------------------------------

    async def _start(self) -> None:
        """Take a channel and start the hub's tasks; :class:`Unavailable` if the layer cannot
        give a channel (a Pub/Sub layer subscribes in Redis for it)."""
        loop = asyncio.get_running_loop()
        began = loop.time()
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
        # So is the position of `all` (one backend read): the first connections then start
        # right after it, and every broadcast sent once they are accepted reaches them.
        # Within what is left of one CHANNEL_LAYER_TIMEOUT for the whole start (daphne drops
        # a handshake after 5 s): a stalled Redis then only costs that position.
        left = wscommands_settings.CHANNEL_LAYER_TIMEOUT - (loop.time() - began)
        baseline = self.ordered.follow(ALL)
        if baseline is not None and left > 0:
            await asyncio.wait([baseline], timeout=left)

    async def _stop(self) -> None:
        channel, self.channel = self.channel, None
        assert channel is not None  # only a started hub is stopped
        receiver, *others = self._tasks
        self._tasks = []
        self.ordered.stop()
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
                await self.ordered.receive(message)  # then self.deliver, in offset order
            except Exception:
                logger.exception("delivering a message failed")

    # Delivery -----------------------------------------------------------------------------

    def _recipients(self, envelope: Envelope) -> list[Peer]:
        return local_recipients(self.connections, self.groups, self.users, envelope)

    async def deliver(self, message: dict[str, Any]) -> None:
        """Write a received message's text to each of its local recipients (a stream's
        pushes come here in offset order, see :mod:`.ordering`)."""
        if message.get("type") == MESSAGE_TYPE:
            await self.ordered.write(message)


def hub_class() -> type[Hub]:
    """The class named by ``WSCOMMANDS["HUB_CLASS"]`` (checked at start-up)."""
    return import_string(wscommands_settings.HUB_CLASS)


HUB: Part[Hub] = Part("hub", lambda: hub_class()(get_layer()))


def get_hub() -> Hub:
    """The hub of the running event loop (one per process in a server), made on first use."""
    return RUNTIME.get(HUB)
