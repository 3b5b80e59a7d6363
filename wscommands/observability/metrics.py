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

import importlib.util
import time
from typing import Any

from django.core.signals import setting_changed

from ..conf import wscommands_settings
from ..wire import codes
from .figures import (
    RECIPIENT_BUCKETS,
    Recorded,
    labelled,
    totals,
)

#: The label of a command name the registry does not know (the client's text is never used).
UNKNOWN = "unknown"
#: Close codes counted under their own label (the protocol's and the transport's): else ``other``.
CLOSE_CODES = frozenset(codes.CLOSE_CODES) | frozenset(codes.TRANSPORT_CLOSE_CODES)
#: Whether prometheus-client, the only reader of what is recorded, is installed.
PROMETHEUS_INSTALLED = importlib.util.find_spec("prometheus_client") is not None

_recorded: Recorded | None = None
_on: bool | None = None


def _start() -> bool:
    """Whether to record: prometheus-client installed (the only reader) and METRICS on."""
    global _recorded
    if not PROMETHEUS_INSTALLED or not wscommands_settings.METRICS:
        return False
    if _recorded is None:
        _recorded = Recorded()
    return True


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


def recorded() -> Recorded | None:
    """What the metrics are recorded into while they are on (read by :mod:`.prometheus`)."""
    return _rec()


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


def frame_received(size: int) -> None:
    """A frame of ``size`` bytes arrived from a client."""
    totals.frames_in += 1
    r = _recorded if _on else _rec()  # (per frame: no call when on)
    if r is not None:
        r.bytes_in += size


def frame_sent(text: str) -> None:
    """A frame was handed to the server for a client."""
    totals.frames_out += 1
    r = _recorded if _on else _rec()
    if r is not None:
        r.bytes_out += len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


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
    if r is None:
        return
    if code is None:
        histogram = r.succeeded.get(name)
        if histogram is None:
            histogram = r.succeeded[name] = labelled(r.duration, (name, "ok"))
        histogram.observe(seconds)
    else:
        labelled(r.duration, (name, "error")).observe(seconds)
        r.errors[name, code] = r.errors.get((name, code), 0) + 1


def command_unknown() -> None:
    """A request named a command that is not registered."""
    command_done(UNKNOWN, 0.0, codes.ErrorCode.UNKNOWN_COMMAND)


# Channel layer ----------------------------------------------------------------------------


def delivered(target: str, recipients: int, seconds: float, sent_at: float | None) -> None:
    """A layer message was written to ``recipients`` local connections in ``seconds``.

    ``sent_at`` is the sender's ``time.time()`` (None from an older sender): the lag from
    send to written here, across processes of one host or synchronised clocks.
    """
    lag = None if sent_at is None else max(0.0, time.time() - sent_at)
    if lag is not None:
        totals.delivery(lag)
    r = _rec()
    if r is not None:
        labelled(r.fanout, target).observe(seconds)
        labelled(r.recipients, target, RECIPIENT_BUCKETS).observe(recipients)
        if lag is not None:
            labelled(r.lag, target).observe(lag)


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
