"""A connection's memberships (its groups and its user) in the hub, and the stream
announcements of a resumable connection (``?resume=1``, docs/protocol.md).

- :func:`attach` gives a connection that asked for it a :class:`~.streams.StreamCursor`;
  :func:`start` then announces ``all`` and its user's stream (``wscommands.streams``).
- :func:`enter_group`, :func:`leave_group`, :func:`change_user`: membership changes, each
  announcing (or forgetting) the stream concerned. The position announced is the one the
  connection entered the process's recipients of the stream at (the hub records it, see
  :mod:`~.runtime.ordering`): every later push of the stream reaches it live, none before;
  unless the backend has another epoch now (one read per announcement), then that epoch
  from offset 0.
- :func:`may_join`: what the join authorization hooks say.

The resume request itself is :mod:`.resume`'s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any, Protocol
from urllib.parse import parse_qs

from .._internal.threads import call
from ..delivery.peer import Peer
from ..hub.process import get_hub
from ..streams.cursor import (
    ALL,
    StreamCursor,
    current_positions,
    group_stream,
    history_bounds,
    user_stream,
)
from ..wire.codes import STREAMS
from ..wire.jsoncodec import encode
from .transport import Transport


class Member(Peer, Protocol):
    """A connection as its memberships see it (:class:`~.connection.Connection` is one): a
    peer with its handshake's scope and its transport (whose registry has the join hooks)."""

    scope: dict[str, Any]
    consumer: Transport


logger = logging.getLogger("wscommands.layer")


def wants_resume(scope: dict[str, Any]) -> bool:
    """Whether the handshake asked for resumable delivery (query parameter ``resume=1``)."""
    query = scope.get("query_string", b"")
    if isinstance(query, bytes):
        query = query.decode("latin-1")
    return parse_qs(query).get("resume", [""])[-1] == "1"


def attach(connection: Member) -> None:
    """Make ``connection`` resumable if it asked to and history is on.

    Its ``all`` stream is held from now until :func:`start` has announced it.
    """
    if wants_resume(connection.scope) and history_bounds() is not None:
        connection.streams = StreamCursor(connection)
        connection.streams.hold([ALL])


async def start(connection: Member) -> None:
    """After the accept: announce ``all`` and the user's stream, then let their pushes flow."""
    cursor = connection.streams
    if cursor is None:
        return
    streams = [ALL] + ([user_stream(connection.user_pk)] if connection.user_pk is not None else [])
    async with cursor.lock:
        cursor.hold(streams)
        try:
            await _announce(cursor, streams)
        finally:
            cursor.started = True
            await cursor.release(streams)


async def _announce(cursor: StreamCursor, streams: list[str], forget: Iterable[str] = ()) -> None:
    """Start the cursor where the connection entered each stream and tell the client."""
    frame: dict[str, Any] = dict.fromkeys(forget)
    for stream in forget:
        cursor.forget(stream)
    # A position the process read just now for this connection (its stream's first) is the
    # backend's; one it kept since may be of an epoch gone (history lost: Redis flushed or
    # restarted, or a quiet stream's metadata expired) until a push of the new one comes.
    kept = [s for s in streams if not isinstance(cursor.entries.get(s), asyncio.Future)]
    entries = {stream: await cursor.entry(stream) for stream in streams}
    now = await current_positions([s for s in kept if entries[s] is not None])
    for stream, position in entries.items():
        if position is None:
            # The client takes its position from the first push instead.
            logger.warning("stream position unavailable: %s not announced", stream)
            continue
        if stream in now and now[stream][0] != position[0]:
            # None of the new epoch's pushes reached the connection before its entry: from
            # offset 0, each one the process delivers reaches it (R5: no false epoch change).
            position = (now[stream][0], 0)
        epoch, offset = position
        cursor.start_at(stream, epoch, offset)
        frame[stream] = {"epoch": epoch, "offset": offset}
    if frame:
        await cursor.connection.push_text(encode({STREAMS: frame}))


async def may_join(connection: Member, group: str) -> bool:
    """Whether every join authorization hook lets ``connection`` into ``group``."""
    for hook in connection.consumer.registry.join_hooks:
        if not await call(hook, connection, group):
            return False
    return True


async def enter_group(connection: Member, group: str) -> None:
    """Add ``connection`` to ``group`` (authorized already); announce its stream if resumable."""
    cursor = connection.streams
    connection.groups.add(group)
    if cursor is None:
        await get_hub().join(connection, group)
        return
    stream = group_stream(group)
    async with cursor.lock:
        cursor.hold([stream])
        try:
            await get_hub().join(connection, group)
            await _announce(cursor, [stream])
        finally:
            await cursor.release([stream])


async def leave_group(connection: Member, group: str) -> None:
    """Remove ``connection`` from ``group``; a resumable one is told to forget its stream."""
    connection.groups.discard(group)
    await get_hub().leave(connection, group)
    cursor = connection.streams
    if cursor is not None:
        async with cursor.lock:
            await _announce(cursor, [], forget=[group_stream(group)])


async def change_user(connection: Member, old_pk: Any, new_pk: Any) -> None:
    """Move ``connection`` to another user's stream (announced once the connection started)."""
    cursor = connection.streams
    if cursor is None or old_pk == new_pk:
        await get_hub().set_user(connection, old_pk, new_pk)
        return
    new = [user_stream(new_pk)] if new_pk is not None else []
    async with cursor.lock:
        cursor.hold(new)
        try:
            await get_hub().set_user(connection, old_pk, new_pk)
            if cursor.started:  # else start() announces it
                old = [user_stream(old_pk)] if old_pk is not None else []
                await _announce(cursor, new, forget=old)
        finally:
            if cursor.started:
                await cursor.release(new)
