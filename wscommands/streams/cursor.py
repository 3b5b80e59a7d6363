"""Streams: every push to everyone, a group or a user carries a position, kept in history.

A push to everyone belongs to the stream ``all``, to a group to ``group:<name>``, to a user
to ``user:<pk>``. The sender appends it to the stream's history in the backend (one atomic
call: :meth:`~.backends.base.Backend.history_append`), which gives it an epoch and an offset,
and the hubs pass both along. Connections that opted in (``?resume=1``) get the push with a
``"wscommands.position"`` key; the others get the same text as ever.

Each resumable connection has a :class:`StreamCursor`: the last position it was sent per
stream (so no push is written to it twice) and the streams whose live pushes are held while
their position is being read or their history replayed (so none overtakes the replay).
The streams' positions are announced as memberships change (:mod:`.memberships`); the
resume exchange itself is in :mod:`.resume`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, Protocol

from ..backends import BackendUnavailable, history_store
from ..backends.base import HistoryBounds
from ..conf import wscommands_settings
from ..wire.codes import POSITION
from ..wire.exceptions import Unavailable
from ..wire.jsoncodec import encode


class Recipient(Protocol):
    """What a push needs of the local connection it is written to (a Peer is one)."""

    id: str
    streams: StreamCursor | None

    def push_text(self, text: str) -> Awaitable[None]:
        """Write JSON text to the client; await it."""
        ...


#: The stream of broadcasts.
ALL = "all"


def group_stream(group: str) -> str:
    """The stream of a group's pushes."""
    return f"group:{group}"


def user_stream(pk: Any) -> str:
    """The stream of a user's pushes (``send_to_subset`` with users)."""
    return f"user:{pk}"


def history_bounds() -> HistoryBounds | None:
    """The configured history bounds, or None when history is off (``HISTORY_SIZE`` 0)."""
    s = wscommands_settings
    if not s.HISTORY_SIZE:
        return None
    return HistoryBounds(size=s.HISTORY_SIZE, ttl=s.HISTORY_TTL, meta_ttl=s.HISTORY_META_TTL)


async def publish(stream: str, text: str) -> dict[str, Any]:
    """Record a push in its stream's history; the fields the hubs need to position it.

    Empty when history is off. Raises :class:`Unavailable` when the backend cannot record
    it: a push missing from history would be a gap nobody could see, so it is not sent.
    """
    bounds = history_bounds()
    if bounds is None:
        return {}
    try:
        epoch, offset = await history_store().history_append(stream, text, bounds)
    except BackendUnavailable as exc:
        raise Unavailable("the message history cannot be reached") from exc
    return {"stream": stream, "epoch": epoch, "offset": offset}


def position_text(text: str, stream: str, epoch: str, offset: int) -> str:
    """``text`` (a JSON object) with the ``wscommands.position`` key added, without re-encoding."""
    position = encode({"stream": stream, "epoch": epoch, "offset": offset})
    separator = "" if text == "{}" else ","
    return f'{text[:-1]}{separator}"{POSITION}":{position}}}'


class Push:
    """One stream push as a hub received it; its positioned texts are built once, lazily."""

    __slots__ = ("_bare", "_positioned", "epoch", "exclude", "offset", "stream", "text")

    def __init__(self, stream: str, epoch: str, offset: int, text: str, exclude: str | None = None):
        self.stream, self.epoch, self.offset = stream, epoch, offset
        self.text, self.exclude = text, exclude
        self._positioned: str | None = None
        self._bare: str | None = None

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Push | None:
        """The push a channel-layer message carries, or None if it belongs to no stream."""
        stream = message.get("stream")
        if stream is None:
            return None
        return cls(
            stream, message["epoch"], message["offset"], message["text"], message.get("exclude")
        )

    def positioned(self) -> str:
        """The text with its position, for resumable connections."""
        if self._positioned is None:
            self._positioned = position_text(self.text, self.stream, self.epoch, self.offset)
        return self._positioned

    def bare(self) -> str:
        """The position alone, for a resumable connection the push excludes (everyone_else):
        its offsets stay contiguous, so it sees no gap where it was left out."""
        if self._bare is None:
            self._bare = position_text("{}", self.stream, self.epoch, self.offset)
        return self._bare

    def deliver(self, connection: Recipient) -> Awaitable[None]:
        """Write this push to one local recipient, as that connection expects it; await it.

        (It returns the write rather than awaiting it in a coroutine of its own: the fan-out
        calls it once per recipient.)
        """
        cursor = connection.streams
        if cursor is not None:
            return cursor.offer(self)
        if connection.id == self.exclude:
            return _nothing()
        return connection.push_text(self.text)


async def _nothing() -> None:
    """An awaitable that writes nothing (the push excludes that connection)."""


class StreamCursor:
    """What one resumable connection was sent, per stream, and the streams held for now."""

    def __init__(self, connection: Recipient):
        self.connection = connection
        #: stream -> (epoch, offset) last sent (or the announced starting point).
        self.last: dict[str, tuple[str, int]] = {}
        #: stream -> offset after which every push up to ``last`` was sent, none skipped.
        self.gapless_from: dict[str, int] = {}
        #: stream -> pushes waiting while the stream is announced or replayed.
        self.held: dict[str, list[Push]] = {}
        #: One announcement or resume at a time per connection.
        self.lock = asyncio.Lock()
        #: Whether the first announcement (``all`` and the user's stream) was sent.
        self.started = False

    async def offer(self, push: Push) -> None:
        """Send a live push now, or hold it while its stream is being read or replayed."""
        held = self.held.get(push.stream)
        if held is not None:
            held.append(push)
        else:
            await self.send(push)

    async def send(self, push: Push, *, replayed: bool = False) -> None:
        """Write ``push`` unless this connection already has it (same epoch, offset not newer)."""
        last = self.last.get(push.stream)
        if last is not None and last[0] == push.epoch and push.offset <= last[1]:
            return
        if last is None or last[0] != push.epoch or push.offset != last[1] + 1:
            self.gapless_from[push.stream] = push.offset - 1
        self.last[push.stream] = (push.epoch, push.offset)
        excluded = not replayed and push.exclude is not None and push.exclude == self.connection.id
        await self.connection.push_text(push.bare() if excluded else push.positioned())

    def was_sent(self, stream: str, epoch: str, offset: int) -> bool:
        """Whether the push at ``offset`` was certainly written to this connection already."""
        last = self.last.get(stream)
        start = self.gapless_from.get(stream)
        return (
            last is not None
            and last[0] == epoch
            and start is not None
            and start < offset <= last[1]
        )

    def hold(self, streams: list[str]) -> None:
        """Hold the live pushes of ``streams`` until :meth:`release`."""
        for stream in streams:
            self.held.setdefault(stream, [])

    def start_at(self, stream: str, epoch: str, offset: int) -> None:
        """Take ``(epoch, offset)`` as what this connection has of ``stream``."""
        self.last[stream] = (epoch, offset)
        self.gapless_from[stream] = offset

    def forget(self, stream: str) -> None:
        """Stop tracking ``stream`` (left the group, changed user)."""
        self.last.pop(stream, None)
        self.gapless_from.pop(stream, None)
        self.held.pop(stream, None)

    async def release(self, streams: list[str]) -> None:
        """Send what was held for ``streams``, in order; pushes it already has are dropped."""
        for stream in streams:
            held = self.held.get(stream)
            try:
                # Pushes arriving while these are written join the same list: none overtakes.
                while held:
                    await self.send(held.pop(0))
            finally:
                self.held.pop(stream, None)
