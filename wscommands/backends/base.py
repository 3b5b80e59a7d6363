"""The stores behind wscommands, as four small protocols, and :class:`Backend`, which is all four.

- :class:`StateStore`: the global state every process shares.
- :class:`PresenceStore`: each process's connections and heartbeat, and its operations figures
  (kept only while its heartbeat lives).
- :class:`HistoryStore`: the streams' positions and kept pushes (resumable delivery).
- :class:`IdempotencyStore`: claims and recorded replies of idempotent requests.

``WSCOMMANDS["BACKEND"]`` names one class for all four; ``WSCOMMANDS["STORES"]`` may name
another for any of them (docs/settings.md).
"""

from __future__ import annotations

from asyncio import Event
from collections.abc import Iterable, Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..wire.exceptions import BackendUnavailable
from ..wire.jsoncodec import encode

__all__ = [
    "Backend",
    "BackendUnavailable",
    "HistoryStore",
    "IdempotencyStore",
    "PresenceStore",
    "StateStore",
    "check_amount",
    "encode_mapping",
]


@dataclass(slots=True)
class HistoryRead:
    """What :meth:`Backend.history_read` found in one stream's history.

    ``epoch``/``offset``: the stream's current position. ``entries``: the kept pushes after
    the asked offset, ``(offset, text)`` in offset order, when the asked epoch is current.
    ``complete``: they are every push after the asked offset (nothing aged or trimmed out).
    """

    epoch: str
    offset: int
    entries: list[tuple[int, str]] = field(default_factory=list)
    complete: bool = False


@dataclass(slots=True)
class HistoryBounds:
    """How much history a stream keeps: ``size`` pushes, each for ``ttl`` seconds; its
    position (epoch, offset) lives ``meta_ttl`` seconds after the last push or read."""

    size: int
    ttl: float
    meta_ttl: float


#: What :meth:`Backend.idempotency_claim` answers: the caller runs the request ("claimed"),
#: waits ("pending": another run holds the claim) or replays the recorded reply ("done").
CLAIMED, PENDING, DONE = "claimed", "pending", "done"


class StateStore(Protocol):
    """Global state shared by every process: JSON values under string keys."""

    async def get_global_state(self, key: str | None = None) -> Any:
        """The value under ``key`` (None if absent), or the whole state as a dict."""
        raise NotImplementedError

    async def update_global_state(self, mapping: Mapping[str, Any]) -> None:
        """Merge ``mapping`` into the state, atomically: all keys or none."""
        raise NotImplementedError

    async def increment_global_state(self, key: str, amount: int | float = 1) -> int | float:
        """Add ``amount`` to the number under ``key`` (0 if absent) atomically; new value."""
        raise NotImplementedError


class PresenceStore(Protocol):
    """Each process's presence entries and heartbeat, and its operations-page figures."""

    async def presence_write(
        self,
        process: str,
        ttl: float,
        entries: Mapping[str, str] | None = None,
        remove: Iterable[str] = (),
        replace: bool = False,
    ) -> int:
        """Update one process's presence entries and renew its heartbeat.

        ``entries`` maps connection ids to JSON text; ``replace`` drops the process's other
        entries first. The process counts as alive for ``ttl`` seconds from now. Returns
        how many entries the store now holds for the process (so a caller can notice that
        the store lost them, e.g. after a Redis restart).
        """
        raise NotImplementedError

    async def presence_clear(self, process: str) -> None:
        """Forget a process and its entries (its hub stopped)."""
        raise NotImplementedError

    async def presence_entries(self) -> list[str]:
        """The JSON text of every entry of every live process (dead ones are skipped)."""
        raise NotImplementedError

    async def presence_reap(self) -> tuple[dict[str, list[str]], float | None]:
        """Take the entries of processes whose heartbeat expired, and forget those processes.

        Atomic: of several callers, one gets a dead process's entries (to announce that
        they left). Returns ``({process: [entry JSON, ...]}, seconds until the next live
        process's heartbeat expires, or None when no process is left)``.
        """
        raise NotImplementedError

    async def stats_write(self, process: str, ttl: float, text: str) -> None:
        """Store a process's figures for the operations page, for ``ttl`` seconds."""
        raise NotImplementedError

    async def stats_read(self) -> list[str]:
        """The figures of every process whose presence heartbeat and figures are both fresh."""
        raise NotImplementedError


class HistoryStore(Protocol):
    """Streams' positions and kept pushes (docs/protocol.md, "Resumable delivery")."""

    async def history_append(
        self, stream: str, text: str, bounds: HistoryBounds
    ) -> tuple[str, int]:
        """Append a push to ``stream``'s history; returns its ``(epoch, offset)``.

        A stream without a position (new, or its metadata expired or was lost) starts a new
        epoch at offset 1. Offsets grow by exactly 1 per push, whichever process appends.
        """
        raise NotImplementedError

    async def history_positions(
        self, streams: Iterable[str], bounds: HistoryBounds
    ) -> dict[str, tuple[str, int]]:
        """The current ``(epoch, offset)`` of each stream (a new epoch at 0 if it has none)."""
        raise NotImplementedError

    async def history_read(
        self, stream: str, epoch: str, after: int, bounds: HistoryBounds
    ) -> HistoryRead:
        """The kept pushes of ``stream`` after ``after`` in ``epoch`` (see :class:`HistoryRead`)."""
        raise NotImplementedError


class IdempotencyStore(Protocol):
    """Claims and recorded replies of idempotent requests, per owner and key."""

    async def idempotency_claim(self, owner: str, key: str, lease: float) -> tuple[str, str | None]:
        """Look up a request's record: ``(DONE, reply text or None if too large)``,
        ``(PENDING, None)`` while another run holds it, else claim it for ``lease`` seconds
        and answer ``(CLAIMED, None)``."""
        raise NotImplementedError

    async def idempotency_renew(self, owner: str, key: str, lease: float) -> None:
        """Extend a claim that is still running."""
        raise NotImplementedError

    async def idempotency_finish(
        self, owner: str, key: str, reply: str | None, ttl: float, max_keys: int
    ) -> None:
        """Record a reply (None: too large to keep) for ``ttl`` seconds; the owner keeps at
        most ``max_keys`` finished records, the oldest dropped first. A running claim is never
        dropped (its retry would run the request a second time). Wakes the key's waiters."""
        raise NotImplementedError

    async def idempotency_release(self, owner: str, key: str) -> None:
        """Drop a claim whose run did not finish (a retry runs the request afresh); wakes the
        key's waiters."""
        raise NotImplementedError

    def idempotency_waiter(self, owner: str, key: str) -> AbstractAsyncContextManager[Event]:
        """While entered, an event set when (owner, key)'s claim may have ended (finished or
        released, on any process). Entering waits until a change made from then on is seen.

        The default never sets it: callers re-check the claim at their own interval.
        """
        return nullcontext(Event())


class Backend(StateStore, PresenceStore, HistoryStore, IdempotencyStore):
    """One store for all four concerns (:class:`StateStore`, :class:`PresenceStore`,
    :class:`HistoryStore`, :class:`IdempotencyStore`): subclass it for a backend of your own.

    Values are JSON: they are stored as JSON text and come back as fresh copies, so
    mutating a returned value never changes the stored state.
    """

    @classmethod
    def from_settings(cls, settings: Any) -> Backend:
        """Build the backend from the ``WSCOMMANDS`` settings."""
        return cls()

    async def close(self) -> None:
        """Release connections (called at shutdown and between tests)."""


def encode_mapping(mapping: Mapping[str, Any]) -> dict[str, str]:
    """Check keys are strings and encode every value to JSON text (raises before any write)."""
    if not isinstance(mapping, Mapping):
        raise TypeError("update_global_state takes a mapping of key -> JSON value")
    out = {}
    for key, value in mapping.items():
        if not isinstance(key, str):
            raise TypeError(f"global state keys must be strings, not {type(key).__name__}")
        out[key] = encode(value)
    return out


def check_amount(amount: Any) -> None:
    """Refuse an increment that is not a number."""
    if isinstance(amount, bool) or not isinstance(amount, (int, float)):
        raise TypeError(f"increment amount must be a number, not {type(amount).__name__}")
