"""The resume request of resumable connections (``?resume=1``).

:func:`handle` answers ``{"wscommands.resume": {"streams": {...}}}``. Per stream: may the
connection still receive it (``all`` always; ``user:<pk>`` only as that user; a group only if
every join authorization hook allows it, then it is re-joined)? Then its missed pushes are
replayed in offset order, the reply is sent, and only then the live pushes held meanwhile.
How a resumable connection learns its streams' positions is :mod:`.memberships`'.

See docs/protocol.md, "Resumable delivery", for the wire and the guarantees.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..backends import BackendUnavailable, history_store
from ..connection.memberships import may_join
from ..delivery.messaging import group_channel_name
from ..hub.process import get_hub
from ..observability import streammetrics
from ..streams.cursor import ALL, StreamCursor, history_bounds, position_text, user_stream
from ..wire.codes import (
    FORBIDDEN,
    HISTORY_LOST,
    INVALID,
    RATE_LIMITED,
    RESUME,
    RESUME_MAX_STREAMS,
    TOO_FAR_BEHIND,
)
from ..wire.exceptions import ClientError, InvalidArguments, error_entry
from ..wire.jsoncodec import encode

if TYPE_CHECKING:
    from ..connection.connection import Connection


def is_resume(commands: list[tuple[str, Any]]) -> bool:
    """Whether a request is a resume (``wscommands.resume`` alone in its frame)."""
    return len(commands) == 1 and commands[0][0] == RESUME


def _parse(argument: Any) -> dict[str, tuple[str, int] | None]:
    """stream -> (epoch, offset), or None for a malformed position."""
    streams = argument.get("streams") if isinstance(argument, dict) else None
    if not isinstance(streams, dict):
        raise InvalidArguments('wscommands.resume takes {"streams": {stream: position}}')
    if len(streams) > RESUME_MAX_STREAMS:
        raise InvalidArguments(f"at most {RESUME_MAX_STREAMS} streams per resume")
    parsed: dict[str, tuple[str, int] | None] = {}
    for stream, position in streams.items():
        ok = (
            isinstance(position, dict)
            and isinstance(position.get("epoch"), str)
            and isinstance(position.get("offset"), int)
            and not isinstance(position.get("offset"), bool)
            and position["offset"] >= 0
        )
        parsed[stream] = (position["epoch"], position["offset"]) if ok else None
    return parsed


def _known(stream: str) -> bool:
    kind, _, name = stream.partition(":")
    if stream == ALL:
        return True
    if kind == "user":
        return bool(name)
    if kind == "group":
        try:
            group_channel_name(name)
        except ValueError:
            return False
        return True
    return False


async def _may_receive(connection: Connection, stream: str) -> bool:
    kind, _, name = stream.partition(":")
    if stream == ALL:
        return True
    if kind == "user":
        return connection.user_pk is not None and str(connection.user_pk) == name
    if name in connection.groups:
        return True
    # No hook: the application authorizes joins in its commands, which a resume cannot
    # replay, so the group is not restored.
    return bool(connection.consumer.registry.join_hooks) and await may_join(connection, name)


async def handle(connection: Connection, request_id: Any, argument: Any) -> None:
    """Answer a ``wscommands.resume`` request: replays, then the reply, then live pushes."""
    reply: dict[str, Any] = {}
    cursor = connection.streams
    try:
        if cursor is None:
            raise ClientError("connect with ?resume=1")
        wanted = _parse(argument)
    except Exception as exc:
        reply = {"errors": {RESUME: error_entry(exc, RESUME)}}
        if request_id is not None:
            reply["request_id"] = request_id
        await connection.push_text(encode(reply))
        return
    async with cursor.lock:
        result, allowed = await _authorize(connection, wanted)
        cursor.hold(allowed)
        try:
            joined = []
            for stream in allowed:
                kind, _, name = stream.partition(":")
                if kind == "group" and name not in connection.groups:
                    connection.groups.add(name)
                    await get_hub().join(connection, name)
                    joined.append(stream)
            for stream in joined:
                # Once the process receives the group live: what the history read below
                # does not hold reaches the connection live.
                await cursor.entry(stream)
            for stream in allowed:
                owed = stream not in joined  # (a group restored is received from the reply)
                result[stream] = await _replay(cursor, stream, wanted[stream], owed)
            reply = {RESUME: result}
            streammetrics.resumed(entry.get("reason", "recovered") for entry in result.values())
        except BackendUnavailable as exc:
            reply = {"errors": {RESUME: error_entry(exc, RESUME)}}
        try:
            if request_id is not None:
                reply["request_id"] = request_id
            await connection.push_text(encode(reply))
        finally:
            await cursor.release(allowed)


async def _authorize(
    connection: Connection, wanted: dict[str, tuple[str, int] | None]
) -> tuple[dict[str, Any], list[str]]:
    result: dict[str, Any] = {}
    allowed: list[str] = []
    mine = user_stream(connection.user_pk) if connection.user_pk is not None else None
    # Positions of another user (or of a user, now logged out): this session resumes nothing.
    other_session = any(s.startswith("user:") and s != mine for s in wanted)
    joining = 0
    for stream in wanted:
        if not _known(stream):
            result[stream] = {"recovered": False, "reason": INVALID}
            continue
        kind, _, name = stream.partition(":")
        new_group = kind == "group" and name not in connection.groups
        # A group comes back within MAX_GROUPS_PER_CONNECTION, as a join would.
        if (
            other_session
            or not await _may_receive(connection, stream)
            or (new_group and connection.resources.admit_group(len(connection.groups) + joining))
        ):
            result[stream] = {"recovered": False, "reason": FORBIDDEN}
            continue
        joining += new_group
        allowed.append(stream)
    return result, allowed


async def _replay(
    cursor: StreamCursor, stream: str, position: tuple[str, int] | None, owed: bool = False
) -> dict[str, Any]:
    """Send what the connection missed of one stream; its entry of the reply (``owed``: the
    connection received the stream before this request, see :func:`_owed`)."""
    bounds = history_bounds()
    assert bounds is not None  # a connection has a cursor only while history is on
    backend = history_store()
    if position is None:
        epoch, offset = (await backend.history_positions([stream], bounds))[stream]
        cursor.start_at(stream, epoch, offset)
        return {"recovered": False, "reason": INVALID, "epoch": epoch, "offset": offset}
    epoch, after = position
    sent = cursor.sent.get(stream)
    if epoch and sent is not None and sent.epoch == epoch:
        # Read only after what this connection was sent from there on: asking again for
        # what it has replays nothing (one read of the stream's position, which stays the
        # authority: this process may not have seen the history lost yet).
        while sent.has(after + 1):
            after += 1
    wait = cursor.budget.exhausted()
    if wait:  # nothing more may be replayed for now: not even read
        return {"recovered": False, "reason": RATE_LIMITED, "retry_after": wait}
    read = await backend.history_read(stream, epoch, after, bounds)
    current = {"epoch": read.epoch, "offset": read.offset}
    if epoch == "" and after == 0:  # "no push yet" when announced: its first epoch
        epoch = read.epoch
    if read.epoch != epoch:
        reason = HISTORY_LOST
    elif after > read.offset:
        reason = INVALID  # a position this stream never reached
    elif not read.complete:
        reason = TOO_FAR_BEHIND
    else:
        wait = await _send(cursor, stream, epoch, read.entries)
        if wait:
            return {"recovered": False, "reason": RATE_LIMITED, "retry_after": wait, **current}
        cursor.start_at(stream, read.epoch, read.offset)
        return {"recovered": True, **current}
    if owed:  # (what it named it has: never sent again, rule 4)
        return await _owed(cursor, stream, read.epoch, reason, after if read.epoch == epoch else 0)
    cursor.start_at(stream, read.epoch, read.offset)
    return {"recovered": False, "reason": reason, **current}


async def _owed(
    cursor: StreamCursor, stream: str, epoch: str, reason: str, named: int
) -> dict[str, Any]:
    """A stream not recovered from the position asked: the pushes the connection is owed
    since it started receiving it (rule 1) that history has and it was not sent go first
    all the same, before the reply starts it at the current position: pushes still on
    their way to it (which that start would drop), or a new epoch's pushes after a process
    announced the lost one. What history no longer has is the reason's loss."""
    bounds = history_bounds()
    assert bounds is not None  # a connection has a cursor only while history is on
    sent = cursor.sent.get(stream)
    start = max(sent.floor if sent is not None and sent.epoch == epoch else 0, named)
    read = await history_store().history_read(stream, epoch, start, bounds)
    current = {"epoch": read.epoch, "offset": read.offset}
    wait = await _send(cursor, stream, read.epoch, read.entries)
    if wait:  # nothing was sent: asked again later
        return {"recovered": False, "reason": RATE_LIMITED, "retry_after": wait, **current}
    cursor.start_at(stream, read.epoch, read.offset)
    return {"recovered": False, "reason": reason, **current}


async def _send(
    cursor: StreamCursor, stream: str, epoch: str, entries: list[tuple[int, str]]
) -> float:
    """Replay the ``(offset, text)`` entries the connection was not sent, all of them or
    (over its budget) none: the seconds until they would fit, or 0."""
    had = cursor.of(stream, epoch)
    missing = [
        (offset, position_text(text, stream, epoch, offset))
        for offset, text in entries
        if not had.has(offset)
    ]
    wait = cursor.budget.take(len(missing), sum(len(text) for _, text in missing))
    if wait:
        return wait
    for offset, text in missing:
        await cursor.connection.push_text(text)
        cursor.replayed(stream, epoch, offset)
    streammetrics.replayed(len(missing))
    return 0.0
