"""The figures the metrics record into: histograms, the operations page's totals and what
only Prometheus reads. Plain integers and floats, updated on the event loop (worker threads
take ``Recorded.worker_lock``); :mod:`.prometheus` turns them into metric families."""

from __future__ import annotations

import threading
from bisect import bisect_left
from typing import Any

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
RECIPIENT_BUCKETS = (0, 1, 10, 100, 1000, 10000, 100000)


class Histogram:
    """Observations counted per bucket (upper bounds ``bounds``, then +Inf) and summed."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]):
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        """Count one observation."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        """The buckets as Prometheus writes them: ``(le, observations <= le)``, +Inf last."""
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


class Totals:
    """Cumulative counts of this process, always kept: the operations page reads them."""

    __slots__ = (
        "commands",
        "deliveries",
        "delivery_lag",
        "errors",
        "frames_in",
        "frames_out",
        "lag_buckets",
        "layer_round_trip",
        "refused",
    )

    def __init__(self) -> None:
        self.commands = 0
        self.errors = 0
        self.frames_in = 0
        self.frames_out = 0
        self.refused = 0
        self.deliveries = 0  # layer messages received that carried the sender's time
        self.delivery_lag = 0.0  # their summed seconds from send to written
        # Their count per LATENCY_BUCKETS bucket (+Inf last): percentiles across processes.
        self.lag_buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.layer_round_trip: float | None = None  # the last canary's, seconds

    def delivery(self, lag: float) -> None:
        """A layer message written ``lag`` seconds after it was sent."""
        self.deliveries += 1
        self.delivery_lag += lag
        self.lag_buckets[bisect_left(LATENCY_BUCKETS, lag)] += 1

    def as_dict(self) -> dict[str, Any]:
        """The totals as a JSON-ready dict."""
        out = {name: getattr(self, name) for name in self.__slots__}
        out["lag_buckets"] = list(self.lag_buckets)
        return out


totals = Totals()


class Recorded:
    """What only the Prometheus metrics need (kept while metrics are on)."""

    def __init__(self) -> None:
        self.connections = 0
        self.opened = 0
        self.closed: dict[str, int] = {}
        self.conn_refused: dict[str, int] = {}
        self.bytes_in = 0
        self.bytes_out = 0
        self.refused: dict[str, int] = {}
        self.duration: dict[tuple[str, str], Histogram] = {}
        #: command -> its ("ok") histogram of ``duration``: found per command without a tuple.
        self.succeeded: dict[str, Histogram] = {}
        self.errors: dict[tuple[str, str], int] = {}
        self.fanout: dict[str, Histogram] = {}
        self.recipients: dict[str, Histogram] = {}
        self.lag: dict[str, Histogram] = {}
        self.round_trip = Histogram(LATENCY_BUCKETS)
        self.canary_failures = 0
        self.resumed: dict[str, int] = {}
        self.replayed = 0
        self.stream_gaps = 0  # offsets a hub skipped after STREAM_REORDER_WAIT
        self.streams_evicted = 0  # streams dropped over HISTORY_MAX_STREAMS
        self.streams_kept: int | None = None  # streams with history (last seen)
        # Worker threads update these: under a lock (everything else runs on the loop).
        self.worker_lock = threading.Lock()
        self.queue = 0
        self.wait = Histogram(LATENCY_BUCKETS)


def labelled(
    histograms: dict[Any, Histogram], key: Any, bounds: tuple[float, ...] = LATENCY_BUCKETS
) -> Histogram:
    """The histogram of ``key`` in ``histograms``, made on first use."""
    histogram = histograms.get(key)
    if histogram is None:
        histogram = histograms[key] = Histogram(bounds)
    return histogram
