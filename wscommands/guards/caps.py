"""Connection caps per user and per client IP (``MAX_CONNECTIONS_PER_USER`` / ``_PER_IP``).

Counted per event loop, like the hub: one server process, one count.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from .._internal.runtime import RUNTIME, Part
from ..conf import wscommands_settings
from ..observability import logs, metrics
from ..wire.codes import CloseCode
from ..wire.protocol import ADMIT, Decision, refuse


@dataclass(frozen=True, slots=True)
class Ticket:
    """What one admitted connection counts against the caps (given back on release)."""

    ip: str | None
    user_pk: Any


class ConnectionCaps:
    """The open connections of one process, by client IP and by user."""

    def __init__(self) -> None:
        self.per_ip: Counter[str | None] = Counter()
        self.per_user: Counter[Any] = Counter()

    def admit(self, ip: str | None, user_pk: Any) -> tuple[Decision, Ticket | None]:
        """Count a connection, or refuse it (close 4429) when it would exceed a cap."""
        s = wscommands_settings
        over_ip = (
            s.MAX_CONNECTIONS_PER_IP is not None and self.per_ip[ip] >= s.MAX_CONNECTIONS_PER_IP
        )
        over_user = (
            s.MAX_CONNECTIONS_PER_USER is not None
            and user_pk is not None
            and self.per_user[user_pk] >= s.MAX_CONNECTIONS_PER_USER
        )
        if over_ip or over_user:
            reason = "per_ip" if over_ip else "per_user"
            metrics.connection_refused(reason)
            logs.client_event("cap", "connection over the %s cap: closing with 4429", reason)
            return refuse(close=CloseCode.TOO_MANY_REQUESTS), None
        self.per_ip[ip] += 1
        if user_pk is not None:
            self.per_user[user_pk] += 1
        return ADMIT, Ticket(ip, user_pk)

    def release(self, ticket: Ticket) -> None:
        """Give back what :meth:`admit` counted."""
        _decrement(self.per_ip, ticket.ip)
        if ticket.user_pk is not None:
            _decrement(self.per_user, ticket.user_pk)


def _decrement(counter: Counter[Any], key: Any) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]


CAPS: Part[ConnectionCaps] = Part("connection caps", ConnectionCaps)


def get_caps() -> ConnectionCaps:
    """The running event loop's connection counts."""
    return RUNTIME.get(CAPS)
