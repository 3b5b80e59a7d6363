"""What the server counts: Prometheus metrics and the totals the operations page shows.

The rest of wscommands calls the small functions below at the points where things happen
(a frame in, a command done, a broadcast delivered); this module decides what to record.
Prometheus metrics (``prometheus-client``) are recorded when it is installed and
``WSCOMMANDS["METRICS"]`` is true; :data:`totals` (plain integers, for the operations
page) always are. docs/operations.md lists every metric.

Labels are bounded by construction: a command label is a registered command's name
(anything else is ``unknown``), codes are the protocol's error codes, close codes outside
the protocol's table are ``other``. Never a user, group or connection id.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.signals import setting_changed

from .conf import wscommands_settings

try:
    import prometheus_client
except ImportError:  # optional: without it only the operations page's totals are kept
    prometheus_client = None

#: The label of a command name the registry does not know (the client's text is never used).
UNKNOWN = "unknown"
#: Close codes counted under their own label; anything else is ``other``.
CLOSE_CODES = frozenset(
    {1000, 1001, 1005, 1006, 1008, 1009, 1011, 1012, 3000, 4400, 4413, 4429, 4500, 4503}
)
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_RECIPIENT_BUCKETS = (0, 1, 10, 100, 1000, 10000, 100000)


class Totals:
    """Cumulative counts of this process, read by :mod:`.ops` (rates are computed by readers)."""

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
        self.deliveries = 0  # fan-outs received from the layer
        self.delivery_lag = 0.0  # their summed seconds from send to written
        self.layer_round_trip: float | None = None  # the last canary's, seconds

    def as_dict(self) -> dict[str, Any]:
        """The totals as a JSON-ready dict."""
        return {name: getattr(self, name) for name in self.__slots__}


totals = Totals()


class _Prometheus:
    """The metric objects, created once per process in prometheus-client's default registry."""

    def __init__(self) -> None:
        p = prometheus_client
        self.connections = p.Gauge("wscommands_connections", "Open WebSocket connections.")
        self.opened = p.Counter("wscommands_connections_opened", "WebSocket connections accepted.")
        self.closed = p.Counter(
            "wscommands_connections_closed",
            "WebSocket connections closed, by close code.",
            ["code"],
        )
        self.conn_refused = p.Counter(
            "wscommands_connections_refused",
            "Handshakes refused by a connection cap, by reason.",
            ["reason"],
        )
        self.frames_in = p.Counter("wscommands_frames_received", "Frames received.")
        self.frames_out = p.Counter("wscommands_frames_sent", "Frames sent.")
        self.bytes_in = p.Counter("wscommands_received_bytes", "Bytes of frames received.")
        self.bytes_out = p.Counter("wscommands_sent_bytes", "Bytes of frames sent.")
        self.refused = p.Counter(
            "wscommands_frames_refused", "Frames refused before running, by reason.", ["reason"]
        )
        self.duration = p.Histogram(
            "wscommands_command_duration_seconds",
            "Time to run a command, by command and outcome (ok or error).",
            ["command", "outcome"],
            buckets=_LATENCY_BUCKETS,
        )
        self.errors = p.Counter(
            "wscommands_command_errors",
            "Command errors, by command and error code.",
            ["command", "code"],
        )
        self.fanout = p.Histogram(
            "wscommands_fanout_seconds",
            "Time to write one channel-layer message to its local recipients, by target kind.",
            ["target"],
            buckets=_LATENCY_BUCKETS,
        )
        self.recipients = p.Histogram(
            "wscommands_fanout_recipients",
            "Local recipients of one channel-layer message, by target kind.",
            ["target"],
            buckets=_RECIPIENT_BUCKETS,
        )
        self.lag = p.Histogram(
            "wscommands_delivery_lag_seconds",
            "From send (broadcast, group, user, subset) to written here, by target kind.",
            ["target"],
            buckets=_LATENCY_BUCKETS,
        )
        self.round_trip = p.Histogram(
            "wscommands_layer_round_trip_seconds",
            "The hub's canary: a message to itself through the channel layer.",
            buckets=_LATENCY_BUCKETS,
        )
        self.canary_failures = p.Counter(
            "wscommands_layer_canary_failures", "Canaries that did not come back in time."
        )
        self.queue = p.Gauge(
            "wscommands_worker_queue_length", "Sync calls waiting for a worker thread."
        )
        self.wait = p.Histogram(
            "wscommands_worker_wait_seconds",
            "Time a sync call waited for a worker thread.",
            buckets=_LATENCY_BUCKETS,
        )
        # labels() costs a lock and a dict lookup; the children are cached per label value.
        self._children: dict[tuple, Any] = {}

    def child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child


_metrics: _Prometheus | None = None
_enabled: bool | None = None


def _prom() -> _Prometheus | None:
    """The metrics when recording is on (created on first use), else None."""
    global _metrics, _enabled
    if _enabled is None:
        _enabled = prometheus_client is not None and bool(wscommands_settings.METRICS)
        if _enabled and _metrics is None:
            _metrics = _Prometheus()
    return _metrics if _enabled else None


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    global _enabled
    if setting == "WSCOMMANDS":
        _enabled = None


setting_changed.connect(_on_setting_changed)


def available() -> bool:
    """True when Prometheus metrics are recorded (prometheus-client installed and METRICS on)."""
    return _prom() is not None


def exposition() -> tuple[bytes, str]:
    """This process's metrics in the text format, and its content type."""
    _prom()
    return prometheus_client.generate_latest(), prometheus_client.CONTENT_TYPE_LATEST


# Connections ------------------------------------------------------------------------------


def connection_opened() -> None:
    """A handshake was accepted."""
    m = _prom()
    if m is not None:
        m.opened.inc()
        m.connections.inc()


def connection_closed(code: int | None) -> None:
    """An accepted connection ended with ``code`` (the one the client saw or sent)."""
    m = _prom()
    if m is not None:
        m.connections.dec()
        m.child(m.closed, str(code) if code in CLOSE_CODES else "other").inc()


def connection_refused(reason: str) -> None:
    """A handshake was refused by a cap (``per_ip``, ``per_user``)."""
    m = _prom()
    if m is not None:
        m.child(m.conn_refused, reason).inc()


# Frames -----------------------------------------------------------------------------------


def _size(text: str | None, data: bytes | None) -> int:
    if text is None:
        return len(data or b"")
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def frame_received(text: str | None, data: bytes | None) -> None:
    """A frame arrived from a client."""
    totals.frames_in += 1
    m = _prom()
    if m is not None:
        m.frames_in.inc()
        m.bytes_in.inc(_size(text, data))


def frame_sent(text: str) -> None:
    """A frame was handed to the server for a client."""
    totals.frames_out += 1
    m = _prom()
    if m is not None:
        m.frames_out.inc()
        m.bytes_out.inc(_size(text, None))


def frame_refused(reason: str) -> None:
    """A frame was refused before running (``too_big``, ``rate_limited``, ``too_deep``, ...)."""
    totals.refused += 1
    m = _prom()
    if m is not None:
        m.child(m.refused, reason).inc()


# Commands ---------------------------------------------------------------------------------


def command_done(name: str, seconds: float, code: str | None) -> None:
    """A command finished after ``seconds``: ``code`` is its error code, None if it succeeded."""
    totals.commands += 1
    if code is not None:
        totals.errors += 1
    m = _prom()
    if m is not None:
        m.child(m.duration, name, "ok" if code is None else "error").observe(seconds)
        if code is not None:
            m.child(m.errors, name, code).inc()


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
    m = _prom()
    if m is not None:
        m.child(m.fanout, target).observe(seconds)
        m.child(m.recipients, target).observe(recipients)
        if lag is not None:
            m.child(m.lag, target).observe(lag)


def canary(seconds: float | None) -> None:
    """The hub's canary came back after ``seconds`` (None: it did not in time)."""
    totals.layer_round_trip = seconds
    m = _prom()
    if m is not None:
        if seconds is None:
            m.canary_failures.inc()
        else:
            m.round_trip.observe(seconds)


# Worker pool ------------------------------------------------------------------------------


def worker_queued() -> float:
    """A sync call was submitted to the pool; returns the stamp to pass to worker_started."""
    m = _prom()
    if m is not None:
        m.queue.inc()
    return time.perf_counter()


def worker_started(queued_at: float) -> None:
    """A worker thread picked up a call submitted at ``queued_at`` (runs in that thread)."""
    m = _prom()
    if m is not None:
        m.queue.dec()
        m.wait.observe(time.perf_counter() - queued_at)
