"""System checks: misconfiguration found at start-up, with how to fix it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .conf import DEFAULTS
from .conf import wscommands_settings as s
from .guards.origins import ORIGIN_POLICIES, normalize_origin
from .observability import prometheus
from .runtime.hub import Hub


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
    if s.BACKEND == "redis" and not s.REDIS_URL:
        errors.append(
            checks.Error(
                'WSCOMMANDS["BACKEND"] is "redis" but WSCOMMANDS["REDIS_URL"] is not set.',
                hint='Set WSCOMMANDS["REDIS_URL"] = "redis://127.0.0.1:6379/0".',
                id="wscommands.E003",
            )
        )
    if s.DESCRIBE not in ("off", "staff", "public"):
        errors.append(
            checks.Error(
                f'WSCOMMANDS["DESCRIBE"] must be "off", "staff" or "public", got {s.DESCRIBE!r}.',
                hint='"staff" lets logged-in staff users run describe; "public" everyone.',
                id="wscommands.E012",
            )
        )
    for name in _POSITIVE_INTEGERS:
        value = getattr(s, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            errors.append(
                checks.Error(
                    f'WSCOMMANDS["{name}"] must be a positive integer, got {value!r}.',
                    hint=_default_hint(name),
                    id="wscommands.E004",
                )
            )
    errors.extend(_check_hub_class(s.HUB_CLASS))
    return errors


def _default_hint(name: str) -> str:
    return f"Remove it to use the default ({DEFAULTS[name]!r}) or set a value above 0."


def _check_hub_class(path: Any) -> list[checks.CheckMessage]:
    try:
        cls = import_string(path) if isinstance(path, str) else None
    except ImportError as exc:
        problem = f"cannot be imported ({exc})"
    else:
        if isinstance(cls, type) and issubclass(cls, Hub):
            return []
        problem = "is not a subclass of wscommands.runtime.hub.Hub"
    return [
        checks.Error(
            f'WSCOMMANDS["HUB_CLASS"] = {path!r} {problem}.',
            hint='Use "wscommands.runtime.hub.Hub" or the dotted path of a subclass of it.',
            id="wscommands.E007",
        )
    ]


_POSITIVE_INTEGERS = ("WORKER_THREADS", "MAX_PENDING_REQUESTS", "PRESENCE_LIMIT")
#: Every interval (seconds) and size: 0 or less would mean a hot loop or a refusal of all.
_POSITIVE_NUMBERS = (
    "MAX_MESSAGE_SIZE",
    "MAX_JSON_DEPTH",
    "MAX_INVALID_FRAMES",
    "RATE_LIMIT_BURST",
    "RATE_LIMIT_BYTES_BURST",
    "RATE_LIMIT_CLOSE_AFTER",
    "MAX_OUTGOING_BACKLOG",
    "MAX_INBOX",
    "MAX_PENDING_BYTES",
    "MAX_COMMANDS_PER_REQUEST",
    "MAX_TIMERS",
    "MAX_TIMER_BYTES",
    "MAX_GROUPS_PER_CONNECTION",
    "MAX_CLIENT_MEMORY",
    "WORKER_THREADS_PER_CONNECTION",
    "ANONYMOUS_WORKER_SHARE",
    "SHUTDOWN_TIMEOUT",
    "CHANNEL_LAYER_TIMEOUT",
    "PRESENCE_TTL",
    "GROUP_REFRESH_INTERVAL",
    "HEALTH_CHECK_INTERVAL",
    "PRESENCE_EVENT_INTERVAL",
    "SEND_TIMEOUT",
    "HISTORY_TTL",
    "HISTORY_META_TTL",
    "HISTORY_MAX_STREAMS",
    "RESUME_PUSHES",
    "RESUME_BYTES",
    "RESUME_INTERVAL",
    "STREAM_REORDER_WAIT",
    "STREAM_REORDER_MAX",
    "IDEMPOTENCY_TTL",
    "IDEMPOTENCY_MAX_BYTES",
    "IDEMPOTENCY_MAX_KEYS",
)
_OPTIONAL_POSITIVE = (
    "RATE_LIMIT",
    "RATE_LIMIT_BYTES",
    "MAX_CONNECTIONS_PER_USER",
    "MAX_CONNECTIONS_PER_IP",
    "ANONYMOUS_WORKER_THREADS_PER_IP",
    "WORKER_THREADS_PER_USER",
    "SESSION_CHECK_INTERVAL",
    "OPS_INTERVAL",
)


@checks.register()
def check_limits(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every limit, interval and size (docs/settings.md) must be a positive number (or None)."""
    errors: list[checks.CheckMessage] = []
    try:
        s.reload()
        values = {name: getattr(s, name) for name in _POSITIVE_NUMBERS + _OPTIONAL_POSITIVE}
    except ImproperlyConfigured:
        return []  # reported by check_settings
    for name, value in values.items():
        if value is None and name in _OPTIONAL_POSITIVE:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            allowed = " or None" if name in _OPTIONAL_POSITIVE else ""
            errors.append(
                checks.Error(
                    f'WSCOMMANDS["{name}"] must be a positive number{allowed}, got {value!r}.',
                    hint=_default_hint(name) + (" None turns it off." if allowed else ""),
                    id="wscommands.E005",
                )
            )
    history = s.HISTORY_SIZE
    if isinstance(history, bool) or not isinstance(history, int) or history < 0:
        errors.append(
            checks.Error(
                f'WSCOMMANDS["HISTORY_SIZE"] must be a whole number >= 0, got {history!r}.',
                hint="0 turns history (and resumable delivery) off.",
                id="wscommands.E007",
            )
        )
    elif history and values["HISTORY_META_TTL"] < values["HISTORY_TTL"]:
        errors.append(
            checks.Warning(
                'WSCOMMANDS["HISTORY_META_TTL"] is shorter than HISTORY_TTL: a quiet stream '
                "would lose its position while its pushes are still kept.",
                hint="Keep HISTORY_META_TTL well above HISTORY_TTL (default 3600 vs 300).",
                id="wscommands.W002",
            )
        )
    if history and _number(values["RESUME_PUSHES"]) and values["RESUME_PUSHES"] < history:
        errors.append(
            checks.Error(
                'WSCOMMANDS["RESUME_PUSHES"] is below HISTORY_SIZE: a reconnect could not be '
                "sent one stream's full history in one reply.",
                hint=f"Set it to at least {history} (HISTORY_SIZE).",
                id="wscommands.E030",
            )
        )
    size = s.MAX_MESSAGE_SIZE
    if isinstance(size, (int, float)) and size > 1024 * 1024:
        errors.append(
            checks.Warning(
                'WSCOMMANDS["MAX_MESSAGE_SIZE"] is over daphne\'s 1 MiB frame limit: daphne '
                "drops bigger frames without a close frame, so clients never see 4413.",
                hint="Keep it at or under 1048576, or raise daphne's --websocket_max_message_size.",
                id="wscommands.W001",
            )
        )
    burst, size = s.RATE_LIMIT_BYTES_BURST, s.MAX_MESSAGE_SIZE
    if s.RATE_LIMIT_BYTES and _number(burst) and _number(size) and burst < size:
        errors.append(
            checks.Error(
                'WSCOMMANDS["RATE_LIMIT_BYTES_BURST"] is below MAX_MESSAGE_SIZE: a frame of the '
                "largest allowed size would always be refused.",
                hint=f"Set it to at least {size}.",
                id="wscommands.E010",
            )
        )
    share = s.ANONYMOUS_WORKER_SHARE
    if _number(share) and share > 1:
        errors.append(
            checks.Error(
                f'WSCOMMANDS["ANONYMOUS_WORKER_SHARE"] is a fraction of WORKER_THREADS, at '
                f"most 1; got {share!r}.",
                hint="e.g. 0.5: anonymous connections hold at most half the worker threads.",
                id="wscommands.E009",
            )
        )
    origins = s.ALLOWED_ORIGINS
    if origins is not None:
        bad = (
            [origins]
            if isinstance(origins, str)
            else [o for o in origins if not isinstance(o, str) or normalize_origin(o) is None]
        )
        if bad:
            errors.append(
                checks.Error(
                    f'WSCOMMANDS["ALLOWED_ORIGINS"] must be a list of "scheme://host[:port]" '
                    f"strings; not usable: {bad!r}.",
                    hint='e.g. ["https://example.com", "http://localhost:8000"]',
                    id="wscommands.E006",
                )
            )
    if s.ORIGIN_POLICY not in ORIGIN_POLICIES:
        errors.append(
            checks.Error(
                f'WSCOMMANDS["ORIGIN_POLICY"] must be one of {", ".join(ORIGIN_POLICIES)}; '
                f"got {s.ORIGIN_POLICY!r}.",
                hint='"same-origin" (the default) unless pages on other ports or schemes of '
                "your hosts must connect; prefer listing them in ALLOWED_ORIGINS.",
                id="wscommands.E020",
            )
        )
    return errors


@checks.register()
def check_observability(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Metrics need prometheus-client; a metrics token must be hard to guess."""
    errors: list[checks.CheckMessage] = []
    try:
        s.reload()
        enabled, token = s.METRICS, s.METRICS_TOKEN
    except ImproperlyConfigured:
        return []  # reported by check_settings
    if enabled and not prometheus.installed():
        errors.append(
            checks.Warning(
                'WSCOMMANDS["METRICS"] is on but prometheus-client is not installed: '
                "no metrics are recorded and /metrics answers 404.",
                hint='pip install prometheus-client, or set WSCOMMANDS["METRICS"] = False.',
                id="wscommands.W002",
            )
        )
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


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
