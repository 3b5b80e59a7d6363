"""What the server counts: Prometheus metrics and the totals the operations page shows.

The rest of wscommands calls the small functions below at the points where things happen
(a frame in, a command done, a broadcast delivered); this module decides what to record.
Prometheus metrics are recorded when ``prometheus-client`` is installed and
``WSCOMMANDS["METRICS"]`` is true; :data:`totals` (plain integers, for the operations
page) always are. docs/operations.md lists every metric.

Recording is plain integer and float arithmetic on the event loop (a frame costs a few
attribute updates, a command one bucket lookup); prometheus-client reads it only when
``/metrics`` is scraped, through a custom collector (:class:`.prometheus.Collector`). Its
own metric objects take a lock and a labels lookup on every update, several times the cost.

Labels are bounded by construction: a command label is a registered command's name
(anything else is ``unknown``), codes are the protocol's error codes, close codes outside
the protocol's table are ``other``. Never a user, group or connection id.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from typing import Any

from django.core.signals import setting_changed

from ..conf import wscommands_settings
from . import prometheus

#: The label of a command name the registry does not know (the client's text is never used).
UNKNOWN = "unknown"
#: Outcomes of one stream of a resume request (docs/protocol.md); anything else is ``other``.
#: Close codes counted under their own label; anything else is ``other``.
CLOSE_CODES = frozenset(
    {1000, 1001, 1005, 1006, 1008, 1009, 1011, 1012, 3000, 4400, 4413, 4429, 4500, 4503}
)
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
        out, running = [], 0
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
        self.layer_round_trip: float | None = None  # the last canary's, seconds

    def as_dict(self) -> dict[str, Any]:
        """The totals as a JSON-ready dict."""
        return {name: getattr(self, name) for name in self.__slots__}


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


def _labelled(
    histograms: dict[Any, Histogram], key: Any, bounds: tuple[float, ...] = LATENCY_BUCKETS
) -> Histogram:
    histogram = histograms.get(key)
    if histogram is None:
        histogram = histograms[key] = Histogram(bounds)
    return histogram


_recorded: Recorded | None = None
_on: bool | None = None


def _start() -> bool:
    """Whether to record; registers the collector with prometheus-client the first time."""
    global _recorded
    if not prometheus.installed() or not wscommands_settings.METRICS:
        return False
    if _recorded is None:
        _recorded = Recorded()
        prometheus.register(_recorded, totals)
    return True


def recording() -> Recorded | None:
    """What to record into while metrics are on, else None (for the metric modules beside
    this one, e.g. :mod:`.streammetrics`)."""
    return _rec()


def _rec() -> Recorded | None:
    """What to record into while metrics are on, else None."""
    global _on
    if _on is None:
        _on = _start()
    return _recorded if _on else None


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    global _on
    if setting == "WSCOMMANDS":
        _on = None


setting_changed.connect(_on_setting_changed)


def available() -> bool:
    """True when Prometheus metrics are recorded (prometheus-client installed and METRICS on)."""
    return _rec() is not None


# Connections ------------------------------------------------------------------------------


def connection_opened() -> None:
    """A handshake was accepted."""
    r = _rec()
    if r is not None:
        r.opened += 1
        r.connections += 1


def connection_closed(code: int | None) -> None:
    """An accepted connection ended with ``code`` (the one the client saw or sent)."""
    r = _rec()
    if r is not None:
        r.connections -= 1
        label = str(code) if code in CLOSE_CODES else "other"
        r.closed[label] = r.closed.get(label, 0) + 1


def connection_refused(reason: str) -> None:
    """A handshake was refused by a cap (``per_ip``, ``per_user``)."""
    r = _rec()
    if r is not None:
        r.conn_refused[reason] = r.conn_refused.get(reason, 0) + 1


# Frames -----------------------------------------------------------------------------------


def _size(text: str | None, data: bytes | None) -> int:
    if text is None:
        return len(data or b"")
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def frame_received(text: str | None, data: bytes | None) -> None:
    """A frame arrived from a client."""
    totals.frames_in += 1
    r = _recorded if _on else _rec()  # (per frame: no call when on)
    if r is not None:
        r.bytes_in += _size(text, data)


def frame_sent(text: str) -> None:
    """A frame was handed to the server for a client."""
    totals.frames_out += 1
    r = _recorded if _on else _rec()
    if r is not None:
        r.bytes_out += len(text) if text.isascii() else _size(text, None)


def frame_refused(reason: str) -> None:
    """A frame was refused before running (``too_big``, ``rate_limited``, ``too_deep``, ...)."""
    totals.refused += 1
    r = _rec()
    if r is not None:
        r.refused[reason] = r.refused.get(reason, 0) + 1


# Commands ---------------------------------------------------------------------------------


def command_done(name: str, seconds: float, code: str | None) -> None:
    """A command finished after ``seconds``: ``code`` is its error code, None if it succeeded."""
    totals.commands += 1
    if code is not None:
        totals.errors += 1
    r = _recorded if _on else _rec()
    if r is not None:
        _labelled(r.duration, (name, "ok" if code is None else "error")).observe(seconds)
        if code is not None:
            r.errors[name, code] = r.errors.get((name, code), 0) + 1


def command_unknown() -> None:
    """A request named a command that is not registered."""
    command_done(UNKNOWN, 0.0, "unknown_command")


# Channel layer ----------------------------------------------------------------------------


def delivered(target: str, recipients: int, seconds: float, sent_at: float | None) -> None:
    """A layer message was written to ``recipients`` local connections in ``seconds``.

    ``sent_at`` is the sender's ``time.time()`` (None from an older sender): the lag from
    send to written here, across processes of one host or synchronised clocks.
    """
    lag = None if sent_at is None else max(0.0, time.time() - sent_at)
    if lag is not None:
        totals.deliveries += 1
        totals.delivery_lag += lag
    r = _rec()
    if r is not None:
        _labelled(r.fanout, target).observe(seconds)
        _labelled(r.recipients, target, RECIPIENT_BUCKETS).observe(recipients)
        if lag is not None:
            _labelled(r.lag, target).observe(lag)


def canary(seconds: float | None) -> None:
    """The hub's canary came back after ``seconds`` (None: it did not in time)."""
    totals.layer_round_trip = seconds
    r = _rec()
    if r is not None:
        if seconds is None:
            r.canary_failures += 1
        else:
            r.round_trip.observe(seconds)


# Worker pool ------------------------------------------------------------------------------


def worker_queued() -> float:
    """A sync call was submitted to the pool; returns the stamp to pass to worker_started."""
    r = _rec()
    if r is not None:
        with r.worker_lock:
            r.queue += 1
    return time.perf_counter()


def worker_started(queued_at: float) -> None:
    """A worker thread picked up a call submitted at ``queued_at`` (runs in that thread)."""
    r = _rec()
    if r is not None:
        with r.worker_lock:
            r.queue -= 1
            r.wait.observe(time.perf_counter() - queued_at)
