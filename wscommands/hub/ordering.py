"""The hub's delivery of stream pushes: in offset order per stream, each once per process.

:class:`OrderedDelivery` owns the process's :class:`~.streams.order.StreamOrder`. The hub tells
it when the process starts and stops following a stream (its first local recipient came, its
last left); it then reads the stream's position once the channel-layer subscription is live
(the baseline: every later push reaches the process), and delivers what arrives through the
sequencer, under one lock so that pushes released by a timer never interleave with the
receive loop's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import Any

from ..backends import BackendUnavailable, history_store
from ..conf import wscommands_settings
from ..delivery.fanout import write_all
from ..delivery.peer import Peer
from ..observability import logs, metrics, streammetrics
from ..streams.cursor import ALL, Push, group_stream, history_bounds, user_stream
from ..streams.order import Position, StreamOrder
from ..wire.envelope import Envelope

logger = logging.getLogger("wscommands.layer")


class OrderedDelivery:
    """Stream pushes of one hub, in order (see the module docstring)."""

    def __init__(
        self,
        recipients: Callable[[Envelope], list[Peer]],
        deliver: Callable[[dict[str, Any]], Awaitable[None]],
        groups: Mapping[str, object],
        users: Mapping[Any, object],
    ):
        s = wscommands_settings
        self.order = StreamOrder(s.STREAM_REORDER_WAIT, s.STREAM_REORDER_MAX)
        self._recipients = recipients
        # The hub's groups and users (by key), read by a catch-up for its streams' targets.
        self._groups, self._users = groups, users
        # The hub's deliver (a HUB_CLASS may override it): it sees each message in its turn.
        self._deliver = deliver
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task] = set()
        # stream -> the read of its position, while under way (joiners wait for it).
        self._reading: dict[str, asyncio.Task] = {}

    def follow(self, stream: str, subscribed: Awaitable[Any] | None = None) -> asyncio.Task | None:
        """The process starts receiving ``stream`` (``subscribed``: its layer membership);
        its position is read once that membership is live (the task returned)."""
        if history_bounds() is None or stream in self.order.streams:
            return None
        self.order.begin(stream)
        task = self._spawn(self._read_baseline(stream, subscribed), "wscommands-stream-baseline")
        self._reading[stream] = task
        task.add_done_callback(lambda done: self._read(stream, done))
        return task

    def reading(self, stream: str) -> asyncio.Task | None:
        """The read of ``stream``'s position (after its layer membership) while it is under
        way: a connection entering the stream's recipients then waits for it too."""
        return self._reading.get(stream)

    def _read(self, stream: str, task: asyncio.Task) -> None:
        if self._reading.get(stream) is task:  # (not a later follow's read)
            del self._reading[stream]

    async def ready(self, stream: str, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) until the process has read ``stream``'s
        position: from then on it delivers every push published to it."""
        waiter = self.order.entry(stream)
        if isinstance(waiter, asyncio.Future):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(waiter), timeout)

    def entered(self, peer: Peer, stream: str) -> None:
        """``peer`` just became a local recipient of ``stream``: a resumable connection
        records the position it starts at (no await between this and the insertion)."""
        if peer.streams is not None:
            peer.streams.entered(stream, self.order.entry(stream))

    def unfollow(self, stream: str) -> None:
        """The process no longer receives ``stream``."""
        self.order.end(stream)

    def stop(self) -> None:
        """The hub stopped: forget every stream and pending task."""
        self.order.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in self._tasks:
            task.cancel()

    async def _read_baseline(self, stream: str, subscribed: Awaitable[Any] | None) -> None:
        if subscribed is not None:
            await subscribed
        bounds = history_bounds()
        try:
            if bounds is None:  # history turned off: no position to start from
                raise BackendUnavailable("history is off")
            positions = await history_store().history_positions([stream], bounds)
            position = positions.get(stream)
        except BackendUnavailable:
            logger.warning("stream position of %s unavailable: taken from its first push", stream)
            position = None
        async with self._lock:
            await self._write(self.order.baseline(stream, position))
            self._arm()  # pushes buffered behind a missing one wait from now on

    async def receive(self, message: dict[str, Any]) -> None:
        """A message from the channel layer: handed to the hub's ``deliver`` now, or (a
        stream's push) once the pushes before it were, in offset order."""
        push = Push.from_message(message)
        if push is None:
            await self._deliver(message)
            return
        async with self._lock:
            await self._write(self.order.arrive(push, asyncio.get_running_loop().time()))
            self._arm()

    async def _write(self, pushes: Iterable[Any]) -> None:
        for push in pushes:
            try:
                await self._deliver(push.message)
            except Exception:  # the others still go out, in order
                logger.exception("delivering a message failed")

    async def write(self, message: dict[str, Any]) -> None:
        """Write a message (in its turn) to its local recipients (the hub's ``deliver``)."""
        started = time.perf_counter()
        envelope = Envelope.from_message(message)
        push = Push.from_envelope(envelope, message)
        if push is not None:
            # Recipients and the stream's delivered position are taken together, with no
            # await in between: a connection entering later starts after this push.
            recipients = self._recipients(envelope)
            self.order.delivering(push)
            await write_all(recipients, push.deliver)
        else:
            text, exclude = envelope.text, envelope.exclude
            recipients = [peer for peer in self._recipients(envelope) if peer.id != exclude]
            await write_all(recipients, lambda peer: peer.push_text(text))
        elapsed = time.perf_counter() - started
        metrics.delivered(envelope.target, len(recipients), elapsed, envelope.sent)

    def _arm(self) -> None:
        """Wake up when the oldest held push has waited long enough."""
        deadline = self.order.next_deadline()
        if deadline is None or self._timer is not None:
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._spawn(self._flush(), "wscommands-stream-reorder")

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        # The missing pushes are in history (a push is recorded before it is published):
        # read them once for the process rather than leave the gap to every client.
        found = [p for gap in self.order.gaps(loop.time()) for p in await self._look_up(*gap)]
        async with self._lock:
            due = self.order.fill(found, loop.time())
            skipped = self.order.skipped
            await self._write(due + self.order.due(loop.time()))
            if self.order.skipped > skipped:
                streammetrics.stream_gap(self.order.skipped - skipped)
            self._arm()

    async def catch_up(self) -> None:
        """Deliver what the process may have missed while its layer subscription was down (a
        Redis restart, a reconnection; Pub/Sub keeps nothing): per stream it follows, the
        pushes history has after what it released. Raises :class:`BackendUnavailable` if
        history cannot be read."""
        bounds = history_bounds()
        targets = stream_targets(self._groups, self._users)
        since = {s: at for s, at in self.order.followed().items() if s in targets}
        if bounds is None or not since:
            return
        store = history_store()
        now = await store.history_positions(list(since), bounds)
        moved = [(s, now[s]) for s, at in since.items() if _ahead(now.get(s), at)]
        reads = await asyncio.gather(
            *(
                store.history_read(s, epoch, since[s][1] if epoch == since[s][0] else 0, bounds)
                for s, (epoch, _) in moved
            )
        )
        found = 0
        async with self._lock:
            for (stream, (epoch, _)), read in zip(moved, reads, strict=True):
                if read.epoch != epoch:  # history lost again meanwhile: a later catch-up
                    continue
                target, key = targets[stream]
                pushes = [
                    push
                    for offset, text in read.entries
                    if (push := _push(stream, epoch, offset, text, target, key)) is not None
                ]
                due = self.order.recover(since[stream], pushes, asyncio.get_running_loop().time())
                found += len(due)
                await self._write(due)
            self._arm()
        if found:
            logger.info("delivered %d push(es) missed while the layer reconnected", found)

    async def _look_up(self, stream: str, epoch: str, after: int, held: Any) -> list[Push]:
        """The pushes of ``stream`` between ``after`` and ``held`` (the first held after the
        gap) that history still has; they go to the same recipients as ``held``."""
        bounds = history_bounds()
        if bounds is None:
            return []
        try:
            read = await history_store().history_read(stream, epoch, after, bounds)
        except BackendUnavailable:
            return []
        if read.epoch != epoch:
            return []
        # Not the sender's own everyone_else exclusion, which history does not keep.
        base = {**held.message, "exclude": None, "sent": None}
        return [
            push
            for offset, text in read.entries
            if after < offset < held.offset
            and (push := Push.from_message({**base, "offset": offset, "text": text})) is not None
        ]

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> asyncio.Task:
        task = logs.process_task(coroutine, name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _ahead(position: Position | None, released: Position) -> bool:
    """Whether history has pushes after ``released`` (another epoch: from its first)."""
    if position is None or position[1] == 0:
        return False
    return position[0] != released[0] or position[1] > released[1]


def _push(stream: str, epoch: str, offset: int, text: str, target: str, key: Any) -> Push | None:
    envelope = Envelope(text, target, key, stream=stream, epoch=epoch, offset=offset)
    return Push.from_envelope(envelope, envelope.to_message())


def stream_targets(groups: Iterable[str], users: Iterable[Any]) -> dict[str, tuple[str, Any]]:
    """The streams a hub follows (everyone's, its groups', its users'): target and key each."""
    return {
        ALL: ("all", None),
        **{group_stream(group): ("group", group) for group in groups},
        **{user_stream(pk): ("user", pk) for pk in users},
    }


def local_recipients(
    connections: dict[str, Any],
    groups: dict[str, set[str]],
    users: dict[Any, set[str]],
    envelope: Envelope,
) -> list[Any]:
    """The local connections a message between processes is for (its target and key)."""
    target, key = envelope.target, envelope.key
    if target == "all":
        ids: Iterable[str] = list(connections)
    elif target == "group":
        ids = list(groups.get(str(key), ()))
    elif target == "user":
        ids = list(users.get(key, ()))
    elif target == "ids":
        ids = key or ()
    else:
        ids = ()
    return [peer for local_id in ids if (peer := connections.get(local_id)) is not None]
