"""Metrics of resumable delivery: resumes by outcome, replayed pushes, offsets a process
skipped, streams with history (exported by :mod:`.prometheus`, docs/operations.md)."""

from __future__ import annotations

from collections.abc import Iterable

from ..wire import codes
from .metrics import recorded as recording

#: Outcomes of one stream of a resume request (docs/protocol.md); anything else is ``other``.
RESUME_OUTCOMES = frozenset({"recovered", *codes.RESUME_REASONS})


def resumed(outcomes: Iterable[str]) -> None:
    """A resume request was answered: one outcome per stream it named."""
    r = recording()
    if r is not None:
        for outcome in outcomes:
            label = outcome if outcome in RESUME_OUTCOMES else "other"
            r.resumed[label] = r.resumed.get(label, 0) + 1


def replayed(count: int) -> None:
    """``count`` missed pushes of one stream were replayed."""
    r = recording()
    if r is not None:
        r.replayed += count


def stream_gap(count: int) -> None:
    """The hub skipped ``count`` offsets that neither arrived nor were found in history."""
    r = recording()
    if r is not None:
        r.stream_gaps += count


def streams_kept(count: int, evicted: int = 0) -> None:
    """The backend holds ``count`` streams with history, after evicting ``evicted``."""
    r = recording()
    if r is not None:
        r.streams_kept = count
        r.streams_evicted += evicted
