"""A connection's ``call_later`` calls: scheduled from the loop or a worker thread, charged to
the connection's account until they are over, cancelled when it closes."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable
from typing import Any

from .._internal.threads import call
from ..conf import wscommands_settings
from ..guards.budget import Account
from ..guards.weights import weigh

logger = logging.getLogger("wscommands.connection")


class CallHandle:
    """What :meth:`Connection.call_later` returns: ``cancel()`` it to drop the call."""

    def __init__(self, timers: Timers, size: int):
        self._timers = timers
        self._size = size  # bytes charged to the connection until the call is over
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task | None = None
        self.cancelled = False
        self._over = False

    def cancel(self) -> None:
        """Cancel the call if it has not run yet (or stop it if it is running)."""
        self.cancelled = True
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
        self._finish()

    def _start(
        self, loop: asyncio.AbstractEventLoop, seconds: float, fire: Callable[[], Any]
    ) -> bool:
        if self.cancelled:
            return False
        self._timer = loop.call_later(seconds, fire)
        return True

    def _fire(
        self, loop: asyncio.AbstractEventLoop, run: Any, context: contextvars.Context
    ) -> None:
        self._timer = None
        self._task = loop.create_task(run, context=context)

    def _finish(self) -> None:
        self._timers.pending.discard(self)
        if not self._over:
            self._over = True
            self._timers.account.release_timer(self._size)


class Timers:
    """The ``call_later`` calls of one connection."""

    def __init__(self, loop: asyncio.AbstractEventLoop, account: Account):
        self.loop = loop
        self.account = account
        self.pending: set[CallHandle] = set()

    def call_later(
        self, seconds: float, func: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> CallHandle:
        """Schedule ``func(*args, **kwargs)`` (see :meth:`Connection.call_later`)."""
        size = weigh(func, args, kwargs, stop=wscommands_settings.MAX_TIMER_BYTES)
        refusal = self.account.reserve_timer(size)
        if refusal is not None:
            raise refusal
        handle = CallHandle(self, size)
        context = contextvars.copy_context()
        loop = self.loop

        def fire() -> None:
            handle._fire(loop, self._run(handle, func, args, kwargs), context)

        def start() -> None:
            if handle._start(loop, seconds, fire):
                self.pending.add(handle)

        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            start()
        else:
            loop.call_soon_threadsafe(start)
        return handle

    async def _run(
        self, handle: CallHandle, func: Callable[..., Any], args: tuple, kwargs: dict
    ) -> None:
        try:
            await call(func, *args, **kwargs)
        except asyncio.CancelledError:
            pass
        except Exception:
            logger.exception("call_later callback %r raised", func)
        finally:
            handle._finish()

    def cancel_all(self) -> None:
        """Cancel every pending call (the connection closed)."""
        for handle in list(self.pending):
            handle.cancel()
