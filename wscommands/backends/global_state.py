"""Global state from anywhere (views, signals, tasks): the module-level functions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import state_store


async def get_global_state(key: str | None = None) -> Any:
    """The global value under ``key`` (None if absent), or the whole state as a dict."""
    return await state_store().get_global_state(key)


async def update_global_state(mapping: Mapping[str, Any]) -> None:
    """Merge ``mapping`` into the global state atomically: all keys or none."""
    await state_store().update_global_state(mapping)


async def increment_global_state(key: str, amount: int | float = 1) -> int | float:
    """Atomically add ``amount`` to the number under ``key``; returns the new value."""
    return await state_store().increment_global_state(key, amount)
