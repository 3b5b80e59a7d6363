"""Broadcast, groups and send_to_subset, fanned out once per process.

A message for many connections crosses the channel layer once per *process*, not once per
connection: every process that has connections runs a :class:`Hub` with one channel of its
own, joined to one channel-layer group per wscommands group (and per user) that has local
members. The hub receives each message once, encodes nothing again (the sender encoded the
JSON text once) and writes it to its local connections. So a broadcast costs the same in
Redis for ten clients or ten thousand.

Channel-layer group names, all under ``WSCOMMANDS["PREFIX"]``:
``<prefix>.all`` (every process), ``<prefix>.g.<group>``, ``<prefix>.u.<user pk>``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from channels.layers import BaseChannelLayer, get_channel_layer
from django.core.exceptions import ImproperlyConfigured

from .conf import wscommands_settings
from .presence import PresenceTracker
from .protocol import encode
from .resilience import attempt, required

if TYPE_CHECKING:
    from .connection import Connection

logger = logging.getLogger("wscommands")

MESSAGE_TYPE = "wscommands.deliver"
#: Sent by a hub to its own channel to end its receive loop.
STOP_TYPE = "wscommands.stop"
#: Sent by a hub to a group only it is in, to check the layer still delivers to it.
CANARY_TYPE = "wscommands.canary"
_GROUP_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")
_CHANNEL_GROUP_MAX = 99  # channel layers refuse group names of 100 characters or more
#: Seconds between retries while the channel layer fails.
RETRY_DELAY = 0.5


def get_layer() -> BaseChannelLayer:
    """The channel layer wscommands uses (``WSCOMMANDS["CHANNEL_LAYER"]``)."""
    alias = wscommands_settings.CHANNEL_LAYER
    layer = get_channel_layer(alias)
    if layer is None:
        raise ImproperlyConfigured(
            f"wscommands needs a channel layer: CHANNEL_LAYERS[{alias!r}] is not configured. "
            'Add CHANNEL_LAYERS = {"default": {"BACKEND": '
            '"channels.layers.InMemoryChannelLayer"}} for one process, or '
            "channels_redis for several."
        )
    return layer


def _all_group() -> str:
    return f"{wscommands_settings.PREFIX}.all"


def group_channel_name(group: str) -> str:
    """The channel-layer group behind a wscommands group; raises ValueError if invalid."""
    if not isinstance(group, str) or not _GROUP_NAME.match(group):
        raise ValueError(
            f"invalid group name {group!r}: use letters, digits, '.', '_' and '-' only"
        )
    name = f"{wscommands_settings.PREFIX}.g.{group}"
    if len(name) > _CHANNEL_GROUP_MAX:
        limit = _CHANNEL_GROUP_MAX - len(name) + len(group)
        raise ValueError(f"group name {group!r} is too long: at most {limit} characters")
    return name


def _user_group(user_pk: Any) -> str:
    return f"{wscommands_settings.PREFIX}.u.{user_pk}"


def _message(text: str, target: str, key: Any = None, exclude: str | None = None) -> dict:
    return {"type": MESSAGE_TYPE, "text": text, "target": target, "key": key, "exclude": exclude}


async def broadcast(message: dict[str, Any], *, exclude: str | None = None) -> None:
    """Send ``message`` to every connection of every process (except ``exclude``, an id)."""
    text = encode(message)
    await required(
        get_layer().group_send(_all_group(), _message(text, "all", None, exclude)), "broadcast"
    )


async def send_to_group(group: str, message: dict[str, Any], *, exclude: str | None = None) -> None:
    """Send ``message`` to every member of ``group``, wherever it is connected."""
    channel_group = group_channel_name(group)
    text = encode(message)
    await required(
        get_layer().group_send(channel_group, _message(text, "group", group, exclude)),
        "send_to_group",
    )


async def send_to_subset(recipients: Iterable[Any], message: dict[str, Any]) -> None:
    """Send ``message`` to connection ids, :class:`Connection` objects and users.

    A user means every connection that is that user when the message arrives, on any
    process. A connection named twice (by id and through its user) receives it twice.
    """
    from .connection import Connection

    if isinstance(recipients, (str, bytes)) or not isinstance(recipients, Iterable):
        raise TypeError("recipients must be a list of connection ids, connections or users")
    by_process: dict[str, list[str]] = {}
    user_pks: list[Any] = []
    for recipient in recipients:
        if isinstance(recipient, Connection):
            recipient = recipient.id
        if isinstance(recipient, str):
            process, sep, local = recipient.rpartition("~")
            if sep:
                by_process.setdefault(process, []).append(local)
            continue  # not an id this server issued: nobody to deliver to
        pk = getattr(recipient, "pk", None)
        if pk is None:
            if getattr(recipient, "is_anonymous", False):
                continue
            raise TypeError(
                f"cannot send to {recipient!r}: not a connection id, connection or user"
            )
        user_pks.append(pk)
    if not by_process and not user_pks:
        return
    text = encode(message)
    layer = get_layer()
    for process, ids in by_process.items():
        try:
            await required(layer.send(process, _message(text, "ids", ids)), "send_to_subset")
        except Exception as exc:  # a process that is gone: its connections are gone too
            if type(exc).__name__ != "ChannelFull":
                raise
            logger.warning("process channel %s is full: message dropped", process)
    for pk in dict.fromkeys(user_pks):
        await required(
            layer.group_send(_user_group(pk), _message(text, "user", pk)), "send_to_subset"
        )


class Hub:
    """This process's end of the fan-out: one channel, the local connections, their groups."""

    def __init__(self, layer: BaseChannelLayer):
        self.layer = layer
        self.channel: str | None = None
        self.connections: dict[str, Connection] = {}
        self.groups: dict[str, set[str]] = {}
        self.users: dict[Any, set[str]] = {}
        self._counter = 0
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []
        # Set when a membership may be missing in the layer: the refresh loop re-asserts.
        self._stale = asyncio.Event()
        self._canary_seen = asyncio.Event()
        self._canary_group: str | None = None
        self.presence = PresenceTracker(self)

    # Membership ---------------------------------------------------------------------------

    async def add(self, connection: Connection) -> str:
        """Register a connection and return its id; starts the hub on first use."""
        async with self._lock:
            if self.channel is None:
                await self._start()
            self._counter += 1
            local_id = str(self._counter)
            self.connections[local_id] = connection
            connection_id = f"{self.channel}~{local_id}"
        connection._local_id = local_id
        return connection_id

    async def remove(self, connection: Connection) -> None:
        """Forget a connection, its groups and user; stops the hub when none is left."""
        local_id = connection._local_id
        if self.connections.pop(local_id, None) is None:
            return
        for group in list(connection.groups):
            await self._discard(self.groups, group, local_id, group_channel_name(group))
        if connection._user_pk is not None:
            pk = connection._user_pk
            await self._discard(self.users, pk, local_id, _user_group(pk))
        async with self._lock:
            if not self.connections and self.channel is not None:
                await self._stop()

    async def join(self, connection: Connection, group: str) -> None:
        """Add a local connection to a group."""
        await self._add(self.groups, group, connection._local_id, group_channel_name(group))
        await self.presence.joined(connection, group)

    async def leave(self, connection: Connection, group: str) -> None:
        """Remove a local connection from a group."""
        await self._discard(self.groups, group, connection._local_id, group_channel_name(group))
        await self.presence.left(connection, group)

    async def set_user(self, connection: Connection, old_pk: Any, new_pk: Any) -> None:
        """Move a connection from one user's index to another's (None: anonymous)."""
        if old_pk == new_pk:
            return
        if old_pk is not None:
            await self._discard(self.users, old_pk, connection._local_id, _user_group(old_pk))
        if new_pk is not None:
            await self._add(self.users, new_pk, connection._local_id, _user_group(new_pk))
        await self.presence.changed(connection)

    async def _add(self, index: dict, key: Any, local_id: str, channel_group: str) -> None:
        members = index.setdefault(key, set())
        first = not members
        members.add(local_id)
        if first and not await attempt(self.layer.group_add(channel_group, self.channel), "join"):
            self._stale.set()

    async def _discard(self, index: dict, key: Any, local_id: str, channel_group: str) -> None:
        members = index.get(key)
        if not members or local_id not in members:
            return
        members.discard(local_id)
        if not members:
            del index[key]
            if self.channel is not None:
                await attempt(self.layer.group_discard(channel_group, self.channel), "leave")

    # Life cycle ---------------------------------------------------------------------------

    async def _start(self) -> None:
        # The default prefix on purpose: channels_redis reads every process-local channel
        # through one list named after that prefix; a channel with another prefix is never
        # read while a consumer's channel is being received.
        self.channel = await self.layer.new_channel()
        if not await attempt(self.layer.group_add(_all_group(), self.channel), "start"):
            self._stale.set()
        self._tasks = [
            asyncio.create_task(self._receive_loop(self.channel), name="wscommands-hub"),
            asyncio.create_task(self._refresh_loop(self.channel), name="wscommands-hub-refresh"),
            asyncio.create_task(self.presence.run(self.channel), name="wscommands-presence"),
        ]

    async def _stop(self) -> None:
        channel, self.channel = self.channel, None
        receiver, *others = self._tasks
        self._tasks = []
        for task in others:
            task.cancel()
        # Ask the receive loop to finish by itself rather than cancel it: a cancelled
        # channels_redis receive() can leave the layer's receive lock held for good, and every
        # later receive (so every later handshake) then waits forever.
        if await attempt(self.layer.send(channel, {"type": STOP_TYPE}), "stop"):
            await asyncio.wait([receiver], timeout=wscommands_settings.CHANNEL_LAYER_TIMEOUT)
        if not receiver.done():
            receiver.cancel()
        await asyncio.gather(receiver, *others, return_exceptions=True)
        await self.presence.clear(channel)
        # If this fails, the layer's own group expiry cleans up.
        await attempt(self.layer.group_discard(_all_group(), channel), "stop")
        if self._canary_group is not None:
            group, self._canary_group = self._canary_group, None
            await attempt(self.layer.group_discard(group, channel), "stop")

    async def _memberships(self) -> list[str]:
        return (
            [_all_group(), *([self._canary_group] if self._canary_group else [])]
            + [group_channel_name(g) for g in self.groups]
            + [_user_group(pk) for pk in self.users]
        )

    async def _reassert(self, channel: str) -> bool:
        # Re-adding is idempotent: it renews the layer's group expiry and restores
        # memberships a restarted Redis has lost.
        for group in await self._memberships():
            if not await attempt(self.layer.group_add(group, channel), "re-join"):
                return False
        return True

    async def _refresh_loop(self, channel: str) -> None:
        # Re-assert memberships every GROUP_REFRESH_INTERVAL, and as soon as they may be lost:
        # after a failed layer call (_stale), or when the canary, a message to a group only
        # this hub is in, does not come back. The canary is what notices a Redis that
        # restarted empty while nothing failed here (redis-py reconnects by itself).
        loop = asyncio.get_running_loop()
        refreshed = loop.time()
        canary_group = f"{wscommands_settings.PREFIX}.canary.{channel.rpartition('!')[2]}"
        self._canary_group = canary_group
        while True:
            healthy = await self._canary(canary_group)
            due = loop.time() - refreshed >= wscommands_settings.GROUP_REFRESH_INTERVAL
            if not healthy or due or self._stale.is_set():
                if await self._reassert(channel):
                    self._stale.clear()
                    refreshed = loop.time()
                else:
                    self._stale.set()
            await asyncio.sleep(wscommands_settings.HEALTH_CHECK_INTERVAL)

    async def _canary(self, group: str) -> bool:
        self._canary_seen.clear()
        if not await attempt(self.layer.group_send(group, {"type": CANARY_TYPE}), "canary"):
            return False
        try:
            async with asyncio.timeout(wscommands_settings.CHANNEL_LAYER_TIMEOUT):
                await self._canary_seen.wait()
        except TimeoutError:
            return False
        return True

    async def _receive_loop(self, channel: str) -> None:
        while True:
            try:
                message = await self.layer.receive(channel)
            except Exception as exc:  # Redis down: memberships may be lost with its data
                logger.warning("channel layer receive failed (%s)", type(exc).__name__)
                self._stale.set()
                await asyncio.sleep(RETRY_DELAY)
                continue
            if message.get("type") == STOP_TYPE:
                return
            if message.get("type") == CANARY_TYPE:
                self._canary_seen.set()
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
            return list(self.groups.get(message.get("key"), ()))
        if target == "user":
            return list(self.users.get(message.get("key"), ()))
        if target == "ids":
            return message.get("key") or ()
        return ()

    async def deliver(self, message: dict[str, Any]) -> None:
        """Write a received message's text to each of its local recipients."""
        if message.get("type") != MESSAGE_TYPE:
            return
        text = message["text"]
        exclude = message.get("exclude")
        connections = self.connections
        for local_id in self._targets(message):
            connection = connections.get(local_id)
            if connection is not None and connection.id != exclude:
                await connection.consumer.push_text(text)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def get_hub() -> Hub:
    """The hub of the running event loop (one per process in a server)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None or hub.layer is not get_layer():
        hub = _hubs[loop] = Hub(get_layer())
    return hub
