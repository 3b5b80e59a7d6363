"""Logs an operator can use: one hierarchy, the connection in every record, no floods.

Loggers (all under ``wscommands``, so one level or handler covers them):

- ``wscommands.connection``: handshakes, closes, refused frames, limits, shutdown;
- ``wscommands.command``: commands that fail (our bugs, or a command author's);
- ``wscommands.layer``: the channel layer, fan-out, presence and the backends.

:class:`ContextFilter` adds ``connection_id`` and ``user`` to every record (``-`` outside a
connection), read from the connection whose task logged it. :class:`JSONFormatter` writes
JSON lines. :func:`logging_config` is a ``LOGGING`` dict with exactly one handler.

What a client causes is logged at INFO without a traceback, and at most once per
connection, kind and :data:`INTERVAL`: the next line after a quiet period says how many
were left out (:func:`client_event`). An exception we did not expect is ERROR with its
traceback, limited the same way per connection, command and exception type
(:func:`unexpected`), so one client repeating a request that trips a bug writes a few
lines, not a line per frame.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
from collections.abc import Coroutine
from typing import Any

connection_logger = logging.getLogger("wscommands.connection")
command_logger = logging.getLogger("wscommands.command")
layer_logger = logging.getLogger("wscommands.layer")

#: Seconds during which one connection's repeats of one kind of event are counted, not logged.
INTERVAL = 10.0
#: Kinds of event remembered per connection (beyond it, the oldest is forgotten).
MAX_KINDS = 32


class LogContext:
    """What the records logged on behalf of one connection carry, and its log budget."""

    __slots__ = ("_seen", "connection")

    def __init__(self, connection: Any):
        self.connection = connection
        # kind -> [time of the last line written, events left out since]
        self._seen: dict[str, list[float | int]] = {}

    def allow(self, kind: str) -> tuple[bool, int]:
        """Whether to write a line for ``kind`` now, and how many were left out before it."""
        now = time.monotonic()
        seen = self._seen.get(kind)
        if seen is None:
            if len(self._seen) >= MAX_KINDS:
                del self._seen[next(iter(self._seen))]
            self._seen[kind] = [now, 0]
            return True, 0
        if now - seen[0] < INTERVAL:
            seen[1] += 1
            return False, 0
        skipped = int(seen[1])
        seen[0], seen[1] = now, 0
        return True, skipped


_context: contextvars.ContextVar[LogContext | None] = contextvars.ContextVar(
    "wscommands_log_context", default=None
)
_UNLIMITED = LogContext(None)  # outside a connection: every line is written


def bind(connection: Any) -> None:
    """Attach ``connection`` to the records logged by the current task and the tasks it starts.

    The consumer calls it at the handshake: the connection's own task runs every frame, and
    the tasks running requests copy its context.
    """
    _context.set(LogContext(connection))


def process_task(coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task:
    """Start a task that works for the whole process, not for the connection that started it.

    Its records carry no connection (a task copies the context of the code that creates it,
    which is often some connection's).
    """
    context = contextvars.copy_context()
    context.run(_context.set, None)
    return asyncio.get_running_loop().create_task(coro, name=name, context=context)


def _current() -> LogContext:
    return _context.get() or _UNLIMITED


def client_event(
    kind: str, message: str, *args: Any, logger: logging.Logger = connection_logger
) -> None:
    """Log something a client caused (INFO, no traceback), once per connection per interval."""
    if not logger.isEnabledFor(logging.INFO):
        return
    allowed, skipped = _current().allow(kind)
    if allowed:
        suffix = f" ({skipped} more since the last such line)" if skipped else ""
        logger.info(message + suffix, *args)


def unexpected(
    kind: str,
    message: str,
    *args: Any,
    exc: BaseException | None = None,
    logger: logging.Logger = command_logger,
) -> None:
    """Log a bug (ERROR, with ``exc``'s traceback), once per connection, kind and interval."""
    allowed, skipped = _current().allow(kind if exc is None else f"{kind}:{type(exc).__name__}")
    if allowed:
        suffix = f" ({skipped} more since the last such line)" if skipped else ""
        logger.error(message + suffix, *args, exc_info=exc)


class ContextFilter(logging.Filter):
    """Adds ``connection_id`` and ``user`` to each record (``-`` when there is none).

    Put it on the handler (filters on a logger do not see its children's records).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "connection_id"):
            connection = _current().connection
            if connection is None:
                record.connection_id, record.user = "-", "-"
            else:
                record.connection_id = connection.id or "-"
                user = connection.user
                record.user = user.get_username() if connection.is_authenticated() else "anonymous"
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, connection_id, user[, exc]."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "connection_id": getattr(record, "connection_id", "-"),
            "user": getattr(record, "user", "-"),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(connection_id)s %(user)s] %(message)s"


def logging_config(json_lines: bool = False, level: str = "INFO") -> dict[str, Any]:
    """A Django ``LOGGING`` dict: one handler on the root logger, ``wscommands`` at ``level``.

    The root logger's handlers are replaced (daphne's ``basicConfig`` one included), and
    every logger propagates to it: each record is written exactly once.
    """
    formatter = (
        {"()": "wscommands.observability.logs.JSONFormatter"}
        if json_lines
        else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"wscommands_context": {"()": "wscommands.observability.logs.ContextFilter"}},
        "formatters": {"wscommands": formatter},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "filters": ["wscommands_context"],
                "formatter": "wscommands",
            }
        },
        "root": {"handlers": ["console"], "level": "WARNING"},
        "loggers": {
            "wscommands": {"level": level, "handlers": [], "propagate": True},
            # Django's own console handler would print django.* records a second time (DEBUG).
            "django": {"level": "INFO", "handlers": [], "propagate": True},
            # 4xx responses are a client's doing: only server errors reach the log.
            "django.request": {"level": "ERROR"},
        },
    }
