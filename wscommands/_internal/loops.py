"""One object per event loop: what a server process keeps once (hub, caps, shutdown...).

A server runs one event loop per process; tests run one per test. Keying by loop gives each
its own, dropped with the loop.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    """``get()`` returns the running loop's object, made by ``factory(loop)`` on first use."""

    def __init__(self, factory: Callable[[asyncio.AbstractEventLoop], T]):
        self.factory = factory
        self.objects: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = (
            weakref.WeakKeyDictionary()
        )

    def get(self) -> T:
        """The running loop's object (raises RuntimeError outside a running loop)."""
        loop = asyncio.get_running_loop()
        obj = self.objects.get(loop)
        if obj is None:
            obj = self.objects[loop] = self.factory(loop)
        return obj
