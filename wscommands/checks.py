"""System checks: misconfiguration found at start-up, with how to fix it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured


@checks.register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """WSCOMMANDS keys, the channel layer and the backend must be usable."""
    from .conf import wscommands_settings as s

    errors: list[checks.CheckMessage] = []
    try:
        s.reload()
        alias = s.CHANNEL_LAYER
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="wscommands.E001")]
    if alias not in getattr(settings, "CHANNEL_LAYERS", {}):
        errors.append(
            checks.Error(
                f"CHANNEL_LAYERS[{alias!r}] is not configured; wscommands sends broadcasts "
                "and group messages through it.",
                hint='Add CHANNEL_LAYERS = {"default": {"BACKEND": '
                '"channels.layers.InMemoryChannelLayer"}} (one process) or a '
                "channels_redis layer (several processes).",
                id="wscommands.E002",
            )
        )
    if s.BACKEND == "redis" and not s.REDIS_URL:
        errors.append(
            checks.Error(
                'WSCOMMANDS["BACKEND"] is "redis" but WSCOMMANDS["REDIS_URL"] is not set.',
                hint='Set WSCOMMANDS["REDIS_URL"] = "redis://127.0.0.1:6379/0".',
                id="wscommands.E003",
            )
        )
    for name in ("WORKER_THREADS", "MAX_PENDING_REQUESTS"):
        value = getattr(s, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            errors.append(
                checks.Error(
                    f'WSCOMMANDS["{name}"] must be a positive integer, got {value!r}.',
                    id="wscommands.E004",
                )
            )
    return errors
