"""The system checks of the settings, the channel layer, the stores, the hub class, the
observability switches and the installed extras."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .. import backends
from ..conf import wscommands_settings as s
from ..hub.process import Hub
from ..server.describe import LEVELS
from .limits import POSITIVE_INTEGERS, default_hint


@checks.register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """WSCOMMANDS keys, the channel layer, the backend and the hub class must be usable."""
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
    if "redis" in (s.BACKEND, *s.STORES.values()) and not s.REDIS_URL:
        errors.append(
            checks.Error(
                'WSCOMMANDS["BACKEND"] or a STORES entry is "redis" but WSCOMMANDS["REDIS_URL"] '
                "is not set.",
                hint='Set WSCOMMANDS["REDIS_URL"] = "redis://127.0.0.1:6379/0".',
                id="wscommands.E003",
            )
        )
    unknown = sorted(set(s.STORES) - set(backends.CONCERNS))
    if unknown or not all(isinstance(v, str) for v in s.STORES.values()):
        errors.append(
            checks.Error(
                f'WSCOMMANDS["STORES"] = {s.STORES!r}: its keys must be among '
                f"{list(backends.CONCERNS)} and its values backend names.",
                hint='For example {"history": "redis"}; leave a concern out to use BACKEND.',
                id="wscommands.E022",
            )
        )
    if s.DESCRIBE not in LEVELS:
        errors.append(
            checks.Error(
                f'WSCOMMANDS["DESCRIBE"] must be "off", "staff" or "public", got {s.DESCRIBE!r}.',
                hint='"staff" lets logged-in staff users run describe; "public" everyone.',
                id="wscommands.E012",
            )
        )
    for name in POSITIVE_INTEGERS:
        value = getattr(s, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            errors.append(
                checks.Error(
                    f'WSCOMMANDS["{name}"] must be a positive integer, got {value!r}.',
                    hint=default_hint(name),
                    id="wscommands.E004",
                )
            )
    errors.extend(_check_hub_class(s.HUB_CLASS))
    return errors


def _check_hub_class(path: Any) -> list[checks.CheckMessage]:
    try:
        cls = import_string(path) if isinstance(path, str) else None
    except ImportError as exc:
        problem = f"cannot be imported ({exc})"
    else:
        if isinstance(cls, type) and issubclass(cls, Hub):
            return []
        problem = "is not a subclass of wscommands.hub.Hub"
    return [
        checks.Error(
            f'WSCOMMANDS["HUB_CLASS"] = {path!r} {problem}.',
            hint='Use "wscommands.hub.Hub" or the dotted path of a subclass of it.',
            id="wscommands.E007",
        )
    ]


@checks.register()
def check_observability(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """A metrics token must be hard to guess.

    Metrics without prometheus-client is no warning: it is an optional extra, and /metrics
    says what to install.
    """
    errors: list[checks.CheckMessage] = []
    try:
        s.reload()
        token = s.METRICS_TOKEN
    except ImproperlyConfigured:
        return []  # reported by check_settings
    if token is not None and (not isinstance(token, str) or len(token) < 16):
        errors.append(
            checks.Error(
                'WSCOMMANDS["METRICS_TOKEN"] must be None or a string of at least 16 characters.',
                hint='e.g. WSCOMMANDS["METRICS_TOKEN"] = os.environ["METRICS_TOKEN"], made with '
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`.",
                id="wscommands.E007",
            )
        )
    return errors


@checks.register()
def check_extras(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """What the settings choose must be installed: the ``redis`` extra for Redis."""
    if backends.redis_installed():
        return []
    try:
        s.reload()
        backends_named, alias = (s.BACKEND, *s.STORES.values()), s.CHANNEL_LAYER
    except ImproperlyConfigured:
        return []  # reported by check_settings
    entry = getattr(settings, "CHANNEL_LAYERS", {}).get(alias)
    layer = str(entry.get("BACKEND", "")) if isinstance(entry, dict) else ""
    errors: list[checks.CheckMessage] = []
    if "redis" in backends_named:
        errors.append(checks.Error(backends.REDIS_MISSING, id="wscommands.E021"))
    if layer.startswith("channels_redis."):
        errors.append(
            checks.Error(
                f"CHANNEL_LAYERS[{alias!r}] uses {layer}, which is not installed: "
                'pip install "wscommands[redis]"',
                id="wscommands.E021",
            )
        )
    return errors
