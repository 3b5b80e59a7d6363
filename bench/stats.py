"""Small statistics helpers shared by the scenarios and the report."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Iterator, Sequence
from typing import Any


def interleaved(rounds: int, apps: Sequence[str]) -> Iterator[tuple[int, str]]:
    """``(round, app)`` pairs, alternating which app goes first, so drift hits both alike."""
    for r in range(rounds):
        for app in apps if r % 2 == 0 else list(reversed(apps)):
            yield r, app


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def median_of(rounds: Iterable[dict[str, Any]], key: str) -> float:
    """The median over rounds of one measured figure."""
    values = [r[key] for r in rounds if r.get(key) is not None]
    return statistics.median(values) if values else float("nan")


def medians(rounds: list[dict[str, Any]], keys: Iterable[str]) -> dict[str, float]:
    return {key: median_of(rounds, key) for key in keys}


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def round_ratios(a: list[dict[str, Any]], b: list[dict[str, Any]], key: str) -> list[float]:
    """``a[i][key] / b[i][key]`` for each round both measured (interleaved rounds: each pair
    saw the same machine load)."""
    return [x[key] / y[key] for x, y in zip(a, b, strict=False) if x.get(key) and y.get(key)]


def median_ratio(a: list[dict[str, Any]], b: list[dict[str, Any]], key: str) -> float:
    """The median of :func:`round_ratios`: how the benchmark's ratio columns are computed."""
    ratios = round_ratios(a, b, key)
    return statistics.median(ratios) if ratios else float("nan")
