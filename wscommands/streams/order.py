"""Each process delivers a stream's pushes in offset order, once (docs/protocol.md, rule 2).

A push's offset is given by the backend (``history_append``) and the push published on the
channel layer in a second step, so two processes pushing to one stream can publish offset 6
before 5. :class:`StreamOrder` is the hub's per-stream sequencer: a push that overtook one
still missing is held until the missing one arrives, at most ``STREAM_REORDER_WAIT`` seconds
(and ``STREAM_REORDER_MAX`` pushes per stream); then the hub skips the missing offsets, which
every resumable connection sees as an offset jump (the gap signal: it asks for them with
``wscommands.resume``). A push older than what the process already delivered is dropped: it
comes back only through a resume, never out of order.

After the process's subscription was down (a Redis restart), the pushes it missed are read
from history and go in through :meth:`StreamOrder.recover`, as if they had arrived.

It also gives the position a connection *enters* a stream at (:meth:`entry`): the last offset
the process delivered when the connection became one of the stream's local recipients.
Every later push of the stream reaches that connection live, none before it does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

#: A stream's position: (epoch, offset). The epoch "" is a stream that has had no push yet.
Position = tuple[str, int]

#: Epochs a stream remembers having left, with how far it had released them: a push of the
#: old epoch that arrives late (history lost while it was on its way) must not make the
#: stream count the new epoch from offset 1 again when the next push of the new one comes.
EPOCHS_KEPT = 4


class Positioned(Protocol):
    """What the sequencer reads of a push."""

    stream: str
    epoch: str
    offset: int


@dataclass(slots=True)
class _State:
    #: None until the baseline is read (pushes are buffered); then the epoch delivered.
    epoch: str | None = None
    #: Offset up to which pushes were released (in order) by the sequencer.
    released: int = 0
    #: Offset of the last push the hub took its recipients for (what an entry starts at).
    delivered: int = 0
    ready: bool = False
    #: Whether the baseline read failed: the first push sets the position instead.
    adopt: bool = False
    #: offset -> push, waiting for the offsets before them.
    held: dict[int, Positioned] = field(default_factory=dict)
    #: (push, arrival time) in arrival order, while the baseline is read: any epoch.
    early: list[tuple[Positioned, float]] = field(default_factory=list)
    #: Loop time the oldest held push arrived.
    since: float = 0.0
    waiters: list[asyncio.Future] = field(default_factory=list)
    #: epoch left -> offset released in it when left (at most EPOCHS_KEPT, oldest first).
    left: dict[str, int] = field(default_factory=dict)


class StreamOrder:
    """Per process, per stream subscribed: the sequencer described in the module docstring."""

    def __init__(self, wait: float, max_held: int):
        self.wait = wait
        self.max_held = max_held
        self.streams: dict[str, _State] = {}
        #: Offsets skipped after the wait (for the metrics).
        self.skipped = 0

    def begin(self, stream: str) -> None:
        """The process subscribes to ``stream``: buffer its pushes until :meth:`baseline`."""
        self.streams.setdefault(stream, _State())

    def end(self, stream: str) -> None:
        """The process no longer receives ``stream``."""
        state = self.streams.pop(stream, None)
        if state is not None:
            for waiter in state.waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def clear(self) -> None:
        """Forget every stream (the hub stopped)."""
        for stream in list(self.streams):
            self.end(stream)

    def baseline(self, stream: str, position: Position | None) -> list[Positioned]:
        """The stream's position read after the subscription was live (None: unreadable);
        returns the buffered pushes now due, in order."""
        state = self.streams.get(stream)
        if state is None or state.ready:
            return []
        state.ready = True
        if position is None:
            state.adopt = True
        else:
            state.epoch, state.released = position
            state.delivered = state.released
        # A buffered push may be of another epoch than the baseline (the stream's first
        # push, or one after history was lost, appended just after the read): each goes
        # through the rules of a push arriving now, as if the read had been instant.
        due = [p for push, t in state.early for p in self.arrive(push, t)]
        state.early.clear()
        for waiter in state.waiters:
            if not waiter.done():
                waiter.set_result(self._position(state))
        state.waiters.clear()
        return due

    def entry(self, stream: str) -> Position | asyncio.Future | None:
        """The position a connection entering ``stream``'s recipients *now* starts at: a
        position, a future of it (the baseline is being read), or None (unknown)."""
        state = self.streams.get(stream)
        if state is None:
            return None
        if state.ready:
            return self._position(state)
        waiter = asyncio.get_running_loop().create_future()
        state.waiters.append(waiter)
        return waiter

    def arrive(self, push: Positioned, now: float) -> list[Positioned]:
        """A push received: the pushes now due, in order (maybe none, maybe several)."""
        state = self.streams.get(push.stream)
        if state is None:  # not a stream this process follows: pass it through
            return [push]
        if not state.ready:
            state.early.append((push, now))
            if len(state.early) > self.max_held:  # the baseline read hangs: stop buffering
                del state.early[0]
            return []
        if state.adopt and state.epoch is None:
            state.epoch, state.released = push.epoch, push.offset - 1
            state.delivered = state.released
        if push.epoch != state.epoch:
            # A new epoch (history lost; or the stream's first push when it had none):
            # what is held of the old one goes first, then the new one counts from offset 1
            # (or, an epoch left before, from where it was: none is delivered twice).
            due = [state.held.pop(o) for o in sorted(state.held)]
            if state.epoch:
                state.left[state.epoch] = state.released
                if len(state.left) > EPOCHS_KEPT:
                    del state.left[next(iter(state.left))]
            state.epoch, state.released = push.epoch, state.left.pop(push.epoch, 0)
            state.delivered = state.released
            return due + self.arrive(push, now)
        if push.offset <= state.released:
            return []  # delivered already, or skipped: a resume brings it back
        if not state.held:
            state.since = now
        state.held[push.offset] = push
        due = self._release(state)
        if len(state.held) > self.max_held:
            due += self._skip(state)
        return due

    def followed(self) -> dict[str, Position]:
        """Per stream whose position is known, the last offset released: what a catch-up
        (:meth:`recover`) reads history after."""
        return {
            stream: (state.epoch, state.released)
            for stream, state in self.streams.items()
            if state.ready and state.epoch is not None
        }

    def recover(
        self, since: Position, pushes: Sequence[Positioned], now: float
    ) -> list[Positioned]:
        """One stream's pushes that history has after ``since`` (from :meth:`followed`), read
        because the process may have missed them: they go in as if they had arrived (those
        delivered since are dropped, those of a new epoch start it); the pushes now due.
        Nothing if the stream moved to yet another epoch meanwhile (history lost again)."""
        state = self.streams.get(pushes[0].stream) if pushes else None
        if state is None or not state.ready or state.epoch not in (since[0], pushes[0].epoch):
            return []
        return [due for push in pushes for due in self.arrive(push, now)]

    def gaps(self, now: float) -> list[tuple[str, str, int, Positioned]]:
        """The streams whose wait is over: ``(stream, epoch, last released offset, the first
        push held after the gap)``, for the hub to look the missing offsets up in history."""
        return [
            (stream, state.epoch, state.released, state.held[min(state.held)])
            for stream, state in self.streams.items()
            if state.ready
            and state.held
            and state.epoch is not None
            and now - state.since >= self.wait
        ]

    def fill(self, pushes: Sequence[Positioned], now: float) -> list[Positioned]:
        """Missing pushes found in history: those still missing go in (never another
        epoch's: the stream may have moved on while they were read); the pushes now due."""
        due: list[Positioned] = []
        for push in pushes:
            state = self.streams.get(push.stream)
            if state is not None and state.ready and state.epoch == push.epoch:
                due += self.arrive(push, now)
        return due

    def due(self, now: float) -> list[Positioned]:
        """Skip the missing offsets of every stream that waited ``wait`` seconds: the pushes
        held behind them, in order."""
        out: list[Positioned] = []
        for state in self.streams.values():
            if state.ready and state.held and now - state.since >= self.wait:
                out += self._skip(state)
        return out

    def next_deadline(self) -> float | None:
        """Loop time the next wait ends, None if nothing is held."""
        times = [s.since for s in self.streams.values() if s.ready and s.held]
        return min(times) + self.wait if times else None

    def delivering(self, push: Positioned) -> None:
        """The hub takes ``push``'s recipients now: connections entering later start after it."""
        state = self.streams.get(push.stream)
        if state is not None and state.epoch == push.epoch:
            state.delivered = max(state.delivered, push.offset)

    def held_count(self) -> int:
        """Pushes held now, all streams (for the metrics)."""
        return sum(len(s.held) + len(s.early) for s in self.streams.values())

    def _position(self, state: _State) -> Position | None:
        return None if state.epoch is None else (state.epoch, state.delivered)

    def _release(self, state: _State) -> list[Positioned]:
        due = []
        while (push := state.held.pop(state.released + 1, None)) is not None:
            state.released += 1
            due.append(push)
        return due

    def _skip(self, state: _State) -> list[Positioned]:
        first = min(state.held)
        self.skipped += first - state.released - 1
        state.released = first - 1
        return self._release(state) + (self._skip(state) if state.held else [])
