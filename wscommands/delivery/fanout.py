"""Writing one message to many local connections, each recipient isolated from the others.

A recipient may be closing (its socket is gone between the hub's lookup and the write), slow
(under uvicorn a send waits while the client does not read) or broken (its consumer raises).
None of that may stop or delay the other recipients' delivery:

- every write is guarded: a closed socket is logged once at DEBUG, any other error once
  with its traceback, and the loop goes on;
- a write that takes longer than ``WSCOMMANDS["SEND_TIMEOUT"]`` is abandoned and the client is
  cut off (4429): it does not read;
- the loop yields to the event loop every :data:`YIELD_EVERY` writes, so the server writes
  the first recipients' bytes while the later ones are still being queued (under daphne,
  Twisted writes only when the event loop runs).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from .._internal.compat import is_closed_error
from ..conf import wscommands_settings
from ..wire.codes import CloseCode

logger = logging.getLogger("wscommands.layer")

#: Writes between two yields to the event loop: small enough that the first recipient gets
#: its bytes within milliseconds, large enough that the yields cost nothing measurable.
YIELD_EVERY = 32

# Recipients whose failure was already logged: once per connection, not once per message.
_reported: weakref.WeakSet[Any] = weakref.WeakSet()
# Close tasks of cut-off clients (kept so they are not garbage-collected while running).
_closing: set[asyncio.Task] = set()


class _Watch:
    """One timer per fan-out (not per write) that interrupts a write running too long.

    A timeout per write costs a timer per recipient, more than the write itself under
    daphne; instead each write stamps its start and the timer, re-armed at most once per
    ``SEND_TIMEOUT``, cancels the fan-out task when the write in progress is overdue.
    """

    def __init__(self, timeout: float):
        self.loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None  # constructed inside the fan-out's task
        self.task = task
        self.timeout = timeout
        self.started = self.loop.time()
        self.expired = False
        self.handle = self.loop.call_later(timeout, self._check)

    def _check(self) -> None:
        due = self.started + self.timeout
        if self.loop.time() >= due:
            self.expired = True
            self.task.cancel()
        else:
            self.handle = self.loop.call_at(due, self._check)

    def overdue(self) -> bool:
        """After a CancelledError: True (and the cancellation undone) if it was ours."""
        if not self.expired:
            return False
        self.expired = False
        self.task.uncancel()
        self.handle = self.loop.call_later(self.timeout, self._check)
        return True

    def close(self) -> None:
        self.handle.cancel()


async def write_all(recipients: Iterable[Any], send: Callable[[Any], Awaitable[None]]) -> int:
    """``send(recipient)`` for each recipient (connections), isolated; returns the successes.

    Never raises (except when the caller is cancelled): a failure is logged once per
    recipient; a write that takes over ``SEND_TIMEOUT`` is abandoned and that client closed
    with 4429. Yields to the event loop every YIELD_EVERY writes.
    """
    watch = _Watch(wscommands_settings.SEND_TIMEOUT)
    done = 0
    try:
        for n, recipient in enumerate(recipients, 1):
            watch.started = watch.loop.time()
            try:
                await send(recipient)
            except asyncio.CancelledError:
                if not watch.overdue():
                    raise
                _report(recipient, "does not read (a write took too long)", logging.WARNING)
                task = watch.loop.create_task(_cut_off(recipient))
                _closing.add(task)
                task.add_done_callback(_closing.discard)
                continue
            except Exception as exc:
                if is_closed_error(exc):
                    _report(recipient, "closed while a message was written to it", logging.DEBUG)
                else:
                    _report(recipient, "writing a message to it failed", logging.ERROR, exc)
                continue
            done += 1
            if n % YIELD_EVERY == 0:
                watch.started = watch.loop.time()
                try:
                    await asyncio.sleep(0)
                except asyncio.CancelledError:
                    if not watch.overdue():  # the loop was busy elsewhere: nobody to blame
                        raise
    finally:
        watch.close()
    return done


def _report(recipient: Any, what: str, level: int, exc: BaseException | None = None) -> None:
    if recipient in _reported:
        return
    _reported.add(recipient)
    name = getattr(recipient, "id", None) or repr(recipient)
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    logger.log(level, "connection %s: %s", name, what, exc_info=exc_info)


async def _cut_off(recipient: Any) -> None:
    try:
        await recipient.close(CloseCode.TOO_MANY_REQUESTS)
    except Exception as exc:  # already gone: nothing left to cut off
        logger.debug("closing %r failed (%s)", recipient, type(exc).__name__)
