"""The system check of every limit, interval and size (docs/settings.md)."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from ..conf import DEFAULTS
from ..conf import wscommands_settings as s
from ..guards.origins import ORIGIN_POLICIES, normalize_origin

#: Settings that must be whole numbers of at least 1.
POSITIVE_INTEGERS = ("WORKER_THREADS", "MAX_PENDING_REQUESTS", "PRESENCE_LIMIT")

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
    "IDEMPOTENCY_TTL",
    "IDEMPOTENCY_MAX_BYTES",
    "IDEMPOTENCY_MAX_KEYS",
    "IDEMPOTENCY_MAX_WAITERS",
    "IDEMPOTENCY_WAIT",
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
                    hint=default_hint(name) + (" None turns it off." if allowed else ""),
                    id="wscommands.E005",
                )
            )
    grace = s.PRESENCE_GRACE
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or grace < 0:
        errors.append(
            checks.Error(
                f'WSCOMMANDS["PRESENCE_GRACE"] must be a number >= 0, got {grace!r}.',
                hint="0 announces leaves at once; the default is 5 seconds.",
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
                hint="Keep HISTORY_META_TTL well above HISTORY_TTL (default 86400 vs 300).",
                id="wscommands.W002",
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
    if s.RATE_LIMIT_BYTES and number(burst) and number(size) and burst < size:
        errors.append(
            checks.Error(
                'WSCOMMANDS["RATE_LIMIT_BYTES_BURST"] is below MAX_MESSAGE_SIZE: a frame of the '
                "largest allowed size would always be refused.",
                hint=f"Set it to at least {size}.",
                id="wscommands.E010",
            )
        )
    share = s.ANONYMOUS_WORKER_SHARE
    if number(share) and share > 1:
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


def number(value: Any) -> bool:
    """Whether ``value`` is an int or a float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def default_hint(name: str) -> str:
    """How to fix a bad value of the setting ``name``."""
    return f"Remove it to use the default ({DEFAULTS[name]!r}) or set a value above 0."
