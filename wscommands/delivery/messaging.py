"""Broadcast, groups and send_to_subset, fanned out once per process.

A message for many connections crosses the channel layer once per *process*, not once per
connection: every process that has connections runs a hub (:mod:`.hub`) with one channel of its
own, joined to one channel-layer group per wscommands group (and per user) that has local
members. The hub receives each message once, encodes nothing again (the sender encoded the
JSON text once) and writes it to its local connections. So a broadcast costs the same in
Redis for ten clients or ten thousand.

Channel-layer group names, all under ``WSCOMMANDS["PREFIX"]``:
``<prefix>.all`` (every process), ``<prefix>.g.<group>``, ``<prefix>.u.<user pk>``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer, InMemoryChannelLayer, get_channel_layer
from django.core.exceptions import ImproperlyConfigured

from .._internal.resilience import or_unavailable
from ..commands.dev_checks import encode_push
from ..conf import wscommands_settings
from ..streams.cursor import ALL, group_stream, publish, user_stream
from ..wire.envelope import Envelope
from .peer import split_id

logger = logging.getLogger("wscommands.layer")

# fullmatch, never ``$``: it matches before a trailing newline ("lobby\n" would pass).
_GROUP_NAME = re.compile(r"[a-zA-Z0-9._-]+")
_CHANNEL_GROUP_MAX = 99  # channel layers refuse group names of 100 characters or more
_reach_checked = False  # _check_reach looks once per process


def _check_reach(layer: BaseChannelLayer, operation: str) -> None:
    """Warn, once per process, when a push can reach nobody at all: an in-memory layer that
    no hub of this process listens on (``manage.py shell``, a task worker) reaches no server,
    and silence there is the classic "my broadcast does nothing"."""
    global _reach_checked
    if _reach_checked:
        return
    _reach_checked = True
    if isinstance(layer, InMemoryChannelLayer) and not layer.groups.get(all_group_name()):
        logger.warning(
            "wscommands.%s reaches nobody from this process: its channel layer is Channels' "
            "in-memory one, which only reaches WebSocket connections of this same process, "
            "and it serves none. Use a shared layer (channels_redis, docs/scaling.md) for "
            "pushes from management commands, shells and workers. (Said once per process.)",
            operation,
        )


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


def all_group_name() -> str:
    """The channel-layer group every process's hub is in (broadcasts)."""
    return f"{wscommands_settings.PREFIX}.all"


def group_channel_name(group: str) -> str:
    """The channel-layer group behind a wscommands group; raises ValueError if invalid."""
    if not isinstance(group, str) or not _GROUP_NAME.fullmatch(group):
        raise ValueError(
            f"invalid group name {group!r}: use letters, digits, '.', '_' and '-' only"
        )
    name = f"{wscommands_settings.PREFIX}.g.{group}"
    if len(name) > _CHANNEL_GROUP_MAX:
        limit = _CHANNEL_GROUP_MAX - len(name) + len(group)
        raise ValueError(f"group name {group!r} is too long: at most {limit} characters")
    return name


def user_group_name(user_pk: Any) -> str:
    """The channel-layer group of the hubs that have connections of this user."""
    return f"{wscommands_settings.PREFIX}.u.{user_pk}"


def _message(
    text: str,
    target: str,
    key: Any = None,
    exclude: str | None = None,
    position: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The channel-layer message of a push (position: what streams.publish returned)."""
    return Envelope(text, target, key, exclude, time.time(), **(position or {})).to_message()


async def broadcast(message: dict[str, Any], *, exclude: str | None = None) -> None:
    """Send ``message`` to every connection of every process (except ``exclude``, an id)."""
    text = encode_push(message)
    position = await publish(ALL, text)
    layer = get_layer()
    _check_reach(layer, "broadcast")
    await or_unavailable(
        layer.group_send(all_group_name(), _message(text, "all", None, exclude, position)),
        "broadcast",
    )


async def send_to_group(
    group: str, message: dict[str, Any], *, exclude: str | None = None, history: bool = True
) -> None:
    """Send ``message`` to every member of ``group``, wherever it is connected.

    ``history=False``: outside the group's stream (no position, not replayed on resume), for
    notices that are only worth something live, such as presence events.
    """
    channel_group = group_channel_name(group)
    text = encode_push(message)
    position = await publish(group_stream(group), text) if history else None
    layer = get_layer()
    _check_reach(layer, "send_to_group")
    await or_unavailable(
        layer.group_send(channel_group, _message(text, "group", group, exclude, position)),
        "send_to_group",
    )


async def send_to_subset(recipients: Iterable[Any], message: dict[str, Any]) -> None:
    """Send ``message`` to connection ids, connections (:class:`~.peer.Peer`) and users.

    A user means every connection that is that user when the message arrives, on any
    process. A connection named twice (by id and through its user) receives it twice.
    """
    if isinstance(recipients, (str, bytes)) or not isinstance(recipients, Iterable):
        raise TypeError("recipients must be a list of connection ids, connections or users")
    by_process: dict[str, list[str]] = {}
    user_pks: list[Any] = []
    for recipient in recipients:
        if hasattr(recipient, "push_text"):  # a connection (a Peer), not a user
            recipient = recipient.id
        if isinstance(recipient, str):
            process, local = split_id(recipient)
            if process:
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
    text = encode_push(message)
    layer = get_layer()
    _check_reach(layer, "send_to_subset")
    for process, ids in by_process.items():
        try:
            await or_unavailable(layer.send(process, _message(text, "ids", ids)), "send_to_subset")
        except ChannelFull:  # a process that is gone: its connections are gone too
            logger.warning("process channel %s is full: message dropped", process)
    for pk in dict.fromkeys(user_pks):
        position = await publish(user_stream(pk), text)
        await or_unavailable(
            layer.group_send(user_group_name(pk), _message(text, "user", pk, None, position)),
            "send_to_subset",
        )
