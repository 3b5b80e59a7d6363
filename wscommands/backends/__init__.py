"""Swappable backends for global state and presence: ``memory`` (one process) or ``redis``.

``get_backend()`` returns the configured backend; both implement :class:`~.base.Backend`.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from ..conf import wscommands_settings as s
from .base import Backend, BackendUnavailable

__all__ = [
    "REDIS_MISSING",
    "Backend",
    "BackendUnavailable",
    "get_backend",
    "redis_installed",
    "reset",
]

_ALIASES = {
    "memory": "wscommands.backends.memory.MemoryBackend",
    "redis": "wscommands.backends.redis.RedisBackend",
}
_backend: Backend | None = None

#: Why ``BACKEND = "redis"`` cannot run (system check E021, ``RedisBackend()``).
REDIS_MISSING = (
    'WSCOMMANDS["BACKEND"] = "redis" needs redis-py and channels-redis: '
    'pip install "wscommands[redis]"'
)


def redis_installed() -> bool:
    """Whether redis-py and channels-redis (the ``redis`` extra) are installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("redis", "channels_redis"))


def get_backend() -> Backend:
    """The process's backend, built from settings on first use."""
    global _backend
    if _backend is None:
        path = _ALIASES.get(s.BACKEND, s.BACKEND)
        try:
            cls = import_string(path)
        except ImportError as exc:
            raise ImproperlyConfigured(
                f'WSCOMMANDS["BACKEND"] = {s.BACKEND!r} cannot be imported ({exc}). '
                f'Use "memory", "redis" or the dotted path of a Backend subclass.'
            ) from exc
        _backend = cls.from_settings(s)
    return _backend


def reset() -> None:
    """Forget the backend so the next ``get_backend()`` rebuilds it from settings."""
    global _backend
    _backend = None


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "WSCOMMANDS":
        reset()


setting_changed.connect(_on_setting_changed)
