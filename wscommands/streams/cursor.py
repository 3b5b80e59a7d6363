"""Streams: every push to everyone, a group or a user carries a position, kept in history.

A push to everyone belongs to the stream ``all``, to a group to ``group:<name>``, to a user
to ``user:<pk>``. The sender appends it to the stream's history in the backend (one atomic
call: :meth:`~.backends.base.Backend.history_append`), which gives it an epoch and an offset,
and the hubs pass both along. Connections that opted in (``?resume=1``) get the push with a
``"wscommands.position"`` key; the others get the same text as ever.

The hubs deliver each stream in offset order (:mod:`.order`). Each resumable connection has
a :class:`StreamCursor`: per stream, the position it entered the process's recipients at
(what it is announced), the offsets it was sent (:mod:`.sent`: no push is written to it
twice, live or replayed), its replay budget (:mod:`.budget`), and the streams whose live
pushes are held while they are announced or replayed (so none overtakes the replay). The
announcements are :mod:`~.connection.memberships`'; the resume exchange is
:mod:`~.server.resume`'s.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable
from typing import Any, Protocol

from ..backends import BackendUnavailable, history_store
from ..backends.base import HistoryBounds
from ..conf import wscommands_settings
from ..wire.codes import POSITION, STREAMS
from ..wire.envelope import Envelope
from ..wire.exceptions import Unavailable
from ..wire.jsoncodec import encode
from .budget import ReplayBudget
from .order import Position
from .sent import Sent


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
    return HistoryBounds(
        size=s.HISTORY_SIZE,
        ttl=s.HISTORY_TTL,
        meta_ttl=s.HISTORY_META_TTL,
        max_streams=s.HISTORY_MAX_STREAMS,
    )


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


async def current_positions(streams: list[str]) -> dict[str, Position]:
    """The backend's position of each stream now; nothing when history is off, none is
    asked, or the backend cannot be reached."""
    bounds = history_bounds()
    if bounds is None or not streams:
        return {}
    try:
        return await history_store().history_positions(streams, bounds)
    except BackendUnavailable:
        return {}


def position_text(text: str, stream: str, epoch: str, offset: int) -> str:
    """``text`` (a JSON object) with the ``wscommands.position`` key added, without re-encoding."""
    position = encode({"stream": stream, "epoch": epoch, "offset": offset})
    separator = "" if text == "{}" else ","
    return f'{text[:-1]}{separator}"{POSITION}":{position}}}'


class Push:
    """One stream push as a hub received it; its positioned texts are built once, lazily."""

    __slots__ = ("_bare", "_positioned", "epoch", "exclude", "message", "offset", "stream", "text")

    def __init__(
        self,
        stream: str,
        epoch: str,
        offset: int,
        text: str,
        exclude: str | None = None,
        message: dict[str, Any] | None = None,
    ):
        self.stream, self.epoch, self.offset = stream, epoch, offset
        self.text, self.exclude = text, exclude
        #: The channel-layer message it came in (its recipients: target and key).
        self.message = message or {}
        self._positioned: str | None = None
        self._bare: str | None = None

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Push | None:
        """The push a channel-layer message carries, or None if it belongs to no stream."""
        return cls.from_envelope(Envelope.from_message(message), message)

    @classmethod
    def from_envelope(cls, envelope: Envelope, message: dict[str, Any]) -> Push | None:
        """The push ``envelope`` (read from ``message``) carries, or None if on no stream."""
        if envelope.stream is None or envelope.epoch is None or envelope.offset is None:
            return None
        return cls(
            envelope.stream,
            envelope.epoch,
            envelope.offset,
            envelope.text,
            envelope.exclude,
            message,
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
        #: stream -> what was sent of it (in its current epoch), see :class:`~.sent.Sent`.
        self.sent: dict[str, Sent] = {}
        #: Streams left whose ``sent`` is kept, oldest first (bounded, see :meth:`forget`).
        self.dormant: OrderedDict[str, None] = OrderedDict()
        #: stream -> pushes waiting while the stream is announced or replayed.
        self.held: dict[str, list[Push]] = {}
        #: stream -> the position this connection entered the process's recipients at (or
        #: a future of it): what its announcement says (:meth:`entered`, :meth:`entry`).
        self.entries: dict[str, Position | asyncio.Future | None] = {}
        #: One announcement or resume at a time per connection.
        self.lock = asyncio.Lock()
        #: Whether the first announcement (``all`` and the user's stream) was sent.
        self.started = False
        #: What replays this connection may still be sent (pushes, bytes).
        self.budget = ReplayBudget()
        #: Offsets of sent ranges kept below the newest: one history (older ones are gone).
        self.keep = max(wscommands_settings.HISTORY_SIZE, 1)

    async def offer(self, push: Push) -> None:
        """Send a live push now, or hold it while its stream is being read or replayed."""
        held = self.held.get(push.stream)
        if held is not None:
            held.append(push)
        else:
            await self.send(push)

    async def send(self, push: Push) -> None:
        """Write a live ``push`` unless this connection already has it or started after it."""
        sent = self.sent.get(push.stream)
        if sent is None or sent.epoch != push.epoch:
            if sent is not None and sent.epoch == "":
                # The stream had no push when the connection started: its first epoch
                # continues from offset 0, which the client is told before the push.
                frame = {STREAMS: {push.stream: {"epoch": push.epoch, "offset": 0}}}
                await self.connection.push_text(encode(frame))
            floor = 0 if sent is not None else push.offset - 1
            sent = self.sent[push.stream] = Sent(push.epoch, floor)
        elif push.offset <= sent.floor or sent.has(push.offset):
            return
        sent.add(push.offset, self.keep)
        excluded = push.exclude is not None and push.exclude == self.connection.id
        await self.connection.push_text(push.bare() if excluded else push.positioned())

    def of(self, stream: str, epoch: str) -> Sent:
        """What was sent of ``stream`` in ``epoch`` (nothing if the epoch is another)."""
        self.dormant.pop(stream, None)
        sent = self.sent.get(stream)
        if sent is None or sent.epoch != epoch:
            sent = self.sent[stream] = Sent(epoch, 0)
        return sent

    def replayed(self, stream: str, epoch: str, offset: int) -> None:
        """A replay wrote the push at ``offset`` to this connection."""
        self.of(stream, epoch).add(offset, self.keep)

    def entered(self, stream: str, position: Position | asyncio.Future | None) -> None:
        """The hub made this connection a recipient of ``stream`` at ``position``."""
        self.entries[stream] = position

    async def entry(self, stream: str) -> Position | None:
        """The position this connection entered ``stream`` at (waits for the process to
        read it when the connection is its first there); None when unknown."""
        position = self.entries.pop(stream, None)
        if not isinstance(position, asyncio.Future):
            return position
        try:
            timeout = wscommands_settings.CHANNEL_LAYER_TIMEOUT * 3
            read: Position | None = await asyncio.wait_for(asyncio.shield(position), timeout)
        except TimeoutError:
            return None
        return read

    def hold(self, streams: list[str]) -> None:
        """Hold the live pushes of ``streams`` until :meth:`release`."""
        for stream in streams:
            self.held.setdefault(stream, [])

    def start_at(self, stream: str, epoch: str, offset: int) -> None:
        """Start ``stream`` at ``(epoch, offset)``: live pushes after it are sent.

        In the same epoch, what was sent stays recorded (a resume never sends it again).
        """
        sent = self.of(stream, epoch)
        sent.floor = max(sent.floor, offset)

    def forget(self, stream: str) -> None:
        """Stop receiving ``stream`` (left the group, changed user). What was sent of it is
        kept (for the last ``MAX_GROUPS_PER_CONNECTION`` such streams): a resume after a join
        again never sends those pushes twice."""
        self.held.pop(stream, None)
        self.entries.pop(stream, None)
        if stream in self.sent:
            self.dormant[stream] = None
            self.dormant.move_to_end(stream)
            while len(self.dormant) > max(wscommands_settings.MAX_GROUPS_PER_CONNECTION, 1):
                self.sent.pop(self.dormant.popitem(last=False)[0], None)

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
