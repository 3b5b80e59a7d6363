"""The stores behind global state, presence, stream history and idempotency records:
``memory`` (one process) or ``redis`` (shared), each concern swappable on its own.

May import: conf, observability, wire, _internal.
"""

from __future__ import annotations

import importlib.util
from typing import Any, cast

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .._internal.runtime import RUNTIME, Part
from ..conf import wscommands_settings as s
from .base import (
    Backend,
    BackendUnavailable,
    HistoryStore,
    IdempotencyStore,
    PresenceStore,
    StateStore,
)

__all__ = [
    "CONCERNS",
    "REDIS_MISSING",
    "Backend",
    "BackendUnavailable",
    "get_backend",
    "history_store",
    "idempotency_store",
    "presence_store",
    "redis_installed",
    "state_store",
]

ALIASES = {
    "memory": "wscommands.backends.memory.MemoryBackend",
    "redis": "wscommands.backends.redis.RedisBackend",
}
#: The concerns ``WSCOMMANDS["STORES"]`` may give a store of their own.
CONCERNS = ("state", "presence", "history", "idempotency")
#: dotted class path -> the one instance of it (concerns naming one class share it).
STORES: Part[dict[str, Any]] = Part("stores", dict, per_loop=False, from_settings=True)

#: Why ``BACKEND = "redis"`` cannot run (system check E021, ``RedisBackend()``).
REDIS_MISSING = (
    'WSCOMMANDS["BACKEND"] = "redis" needs redis-py and channels-redis: '
    'pip install "wscommands[redis]"'
)


def redis_installed() -> bool:
    """Whether redis-py and channels-redis (the ``redis`` extra) are installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("redis", "channels_redis"))


def _store(concern: str) -> Any:
    name = s.STORES.get(concern) or s.BACKEND
    path = ALIASES.get(name, name)
    built = RUNTIME.get(STORES)
    store = built.get(path)
    if store is None:
        try:
            cls = import_string(path)
        except ImportError as exc:
            setting = f'STORES"]["{concern}' if s.STORES.get(concern) else "BACKEND"
            raise ImproperlyConfigured(
                f'WSCOMMANDS["{setting}"] = {name!r} cannot be imported ({exc}). '
                f'Use "memory", "redis" or the dotted path of a class with from_settings().'
            ) from exc
        store = built[path] = cls.from_settings(s)
    return store


def get_backend() -> Backend:
    """The store ``WSCOMMANDS["BACKEND"]`` names (all four concerns unless ``STORES`` splits
    them): built from settings on first use, one per process."""
    return cast(Backend, _store("__all__"))


def state_store() -> StateStore:
    """Where the global state lives."""
    return cast(StateStore, _store("state"))


def presence_store() -> PresenceStore:
    """Where presence entries, heartbeats and operations figures live."""
    return cast(PresenceStore, _store("presence"))


def history_store() -> HistoryStore:
    """Where streams' positions and kept pushes live."""
    return cast(HistoryStore, _store("history"))


def idempotency_store() -> IdempotencyStore:
    """Where idempotent requests' claims and replies live."""
    return cast(IdempotencyStore, _store("idempotency"))
