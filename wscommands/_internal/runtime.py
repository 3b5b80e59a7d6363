"""The one object that owns what a server process keeps between connections.

Each module that needs process state declares a :class:`Part` (the hub, connection caps,
the shutdown handler, the session watcher, presence snapshots, the worker pool, the memory
budget, the stores, the schema cache) and reads it with ``RUNTIME.get(part)``: the part is
made on first use and kept by :data:`RUNTIME`, not by the module. Per-loop parts are kept per
event loop (a server runs one per process; tests run one per test) and dropped with their
loop; process parts are shared by every loop and thread. :meth:`Runtime.reset` forgets them
all at once: tests call it between tests; a change of the ``WSCOMMANDS`` setting forgets the
parts built from settings (the stores, whether outgoing messages are checked).

Metrics (observability.metrics) are process-wide counters that prometheus-client reads and
are deliberately not reset.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.core.signals import setting_changed

T = TypeVar("T")


class Part(Generic[T]):
    """One kind of thing the runtime keeps: how to make it, whether per event loop, whether
    it is built from settings (then a change of ``WSCOMMANDS`` forgets it), how to let it go
    on reset (``release``, e.g. shutting a thread pool down)."""

    def __init__(
        self,
        name: str,
        factory: Callable[[], T],
        *,
        per_loop: bool = True,
        from_settings: bool = False,
        release: Callable[[T], None] | None = None,
    ):
        self.name = name
        self.factory = factory
        self.per_loop = per_loop
        self.from_settings = from_settings
        self.release = release

    def __repr__(self) -> str:
        return f"<Part {self.name}{' per loop' if self.per_loop else ''}>"


class Runtime:
    """What this process keeps: its process parts and, per event loop, its loop parts."""

    def __init__(self) -> None:
        self.process_parts: dict[Part[Any], Any] = {}
        self.loop_parts: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[Part[Any], Any]
        ] = weakref.WeakKeyDictionary()
        # Process parts are made from worker threads too (the pool, the budget).
        self.lock = threading.Lock()

    def get(self, part: Part[T]) -> T:
        """The part, made on first use (a per-loop part needs a running event loop)."""
        if part.per_loop:
            loop = asyncio.get_running_loop()
            parts = self.loop_parts.get(loop)
            if parts is None:
                parts = self.loop_parts[loop] = {}
            obj = parts.get(part)
            if obj is None:
                obj = parts[part] = part.factory()
            return obj
        obj = self.process_parts.get(part)
        if obj is None:
            with self.lock:
                obj = self.process_parts.get(part)
                if obj is None:
                    obj = self.process_parts[part] = part.factory()
        return obj

    def peek(self, part: Part[T]) -> T | None:
        """The part if it was made (in this loop, for a per-loop part), else None."""
        if part.per_loop:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return None
            return self.loop_parts.get(loop, {}).get(part)
        return self.process_parts.get(part)

    def reset(self, *, settings_only: bool = False) -> None:
        """Forget every part (or those built from settings), releasing those that say how;
        the next use makes new ones."""
        dropped: list[tuple[Part[Any], Any]] = []
        with self.lock:
            for parts in [self.process_parts, *self.loop_parts.values()]:
                for part in [p for p in parts if p.from_settings or not settings_only]:
                    dropped.append((part, parts.pop(part)))
        for part, obj in dropped:
            if part.release is not None:
                part.release(obj)


#: The process's runtime.
RUNTIME = Runtime()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in ("WSCOMMANDS", "DEBUG"):
        RUNTIME.reset(settings_only=True)


setting_changed.connect(_on_setting_changed)
