"""The Prometheus side of the metrics: what ``/metrics`` shows, built when it is scraped.

:mod:`.metrics` records into plain integers and :class:`~.figures.Histogram` objects; the
:class:`Collector` registered here turns them into metric families only when prometheus-client
asks (docs/operations.md lists every metric). :func:`scrape` is the whole answer to
``GET /metrics``, for Django's view and the engine alike. Without prometheus-client
installed, only its 404 is used.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Any

from django.http import HttpResponse
from django.utils.cache import add_never_cache_headers

try:
    import prometheus_client
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
except ImportError:  # optional: without it only the operations page's totals are kept
    prometheus_client = None  # type: ignore[assignment]

from ..conf import wscommands_settings
from . import metrics
from .access import is_staff
from .figures import Recorded, Totals


def installed() -> bool:
    """Whether prometheus-client is installed."""
    return prometheus_client is not None


_registered: list[Collector] = []


def register() -> None:
    """Have prometheus-client's default registry read our metrics at each scrape (once).

    Called at start-up (apps.py) and before each exposition, so an exporter of the
    application's own (``prometheus_client.start_http_server``) sees them too.
    """
    recorded = metrics.recorded()
    if recorded is not None and not _registered:
        _registered.append(Collector(recorded, metrics.totals))
        prometheus_client.REGISTRY.register(_registered[0])


def exposition() -> tuple[bytes, str]:
    """This process's metrics in the text format (ours and prometheus-client's), and its type."""
    register()
    return prometheus_client.generate_latest(), prometheus_client.CONTENT_TYPE_LATEST


def scrape(authorization: str, user: Any) -> HttpResponse:
    """The answer to ``GET /metrics``: this process's metrics for the ``METRICS_TOKEN`` bearer
    or a staff user, 403 for anyone else, 404 when metrics are off (``METRICS`` false, or
    prometheus-client missing: the body says what to install); never cached.

    ``authorization`` is the request's ``Authorization`` header ("" without one); ``user`` its
    user, read only when the token does not already let it in (a lazy one is loaded then:
    sync, it may query the database).
    """
    if not installed():
        answer = _plain(404, 'metrics need prometheus-client: pip install "wscommands[metrics]"')
    elif not metrics.available():
        answer = _plain(404, "metrics are off: WSCOMMANDS['METRICS'] is False")
    elif not (bearer_ok(authorization) or is_staff(user)):
        answer = _plain(
            403, "metrics need WSCOMMANDS['METRICS_TOKEN'] as a bearer token or a staff session"
        )
    else:
        body, content_type = exposition()
        answer = HttpResponse(body, content_type=content_type)
    add_never_cache_headers(answer)
    return answer


def bearer_ok(authorization: str) -> bool:
    """Whether an ``Authorization`` header carries the ``METRICS_TOKEN`` bearer token."""
    token = wscommands_settings.METRICS_TOKEN
    scheme, _, given = authorization.partition(" ")
    return (
        token is not None
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode(), token.encode())
    )


def _plain(status: int, text: str) -> HttpResponse:
    # Plain text, not Http404: the reason shows with DEBUG off too.
    return HttpResponse(f"{text}\n", status=status, content_type="text/plain")


class Collector:
    """Turns :class:`~.figures.Recorded` and :data:`~.metrics.totals` into metric families
    when scraped."""

    def __init__(self, recorded: Recorded, totals: Totals):
        self.r = recorded
        self.t = totals

    def collect(self) -> Iterator[Metric]:
        """Every wscommands metric family (called by prometheus-client at each scrape)."""
        r, t = self.r, self.t
        yield GaugeMetricFamily(
            "wscommands_connections", "Open WebSocket connections.", value=r.connections
        )
        yield _counter("wscommands_connections_opened", "WebSocket connections accepted.", r.opened)
        yield _counter(
            "wscommands_connections_closed",
            "WebSocket connections closed, by close code.",
            r.closed,
            ["code"],
        )
        yield _counter(
            "wscommands_connections_refused",
            "Handshakes refused by a connection cap, by reason.",
            r.conn_refused,
            ["reason"],
        )
        yield _counter("wscommands_frames_received", "Frames received.", t.frames_in)
        yield _counter("wscommands_frames_sent", "Frames sent.", t.frames_out)
        yield _counter("wscommands_received_bytes", "Bytes of frames received.", r.bytes_in)
        yield _counter("wscommands_sent_bytes", "Bytes of frames sent.", r.bytes_out)
        yield _counter(
            "wscommands_frames_refused",
            "Frames refused before running, by reason.",
            r.refused,
            ["reason"],
        )
        yield _histogram(
            "wscommands_command_duration_seconds",
            "Time to run a command, by command and outcome (ok or error).",
            r.duration,
            ["command", "outcome"],
        )
        yield _counter(
            "wscommands_command_errors",
            "Command errors, by command and error code.",
            r.errors,
            ["command", "code"],
        )
        yield _histogram(
            "wscommands_fanout_seconds",
            "Time to write one channel-layer message to its local recipients, by target kind.",
            r.fanout,
            ["target"],
        )
        yield _histogram(
            "wscommands_fanout_recipients",
            "Local recipients of one channel-layer message, by target kind.",
            r.recipients,
            ["target"],
        )
        yield _histogram(
            "wscommands_delivery_lag_seconds",
            "From send (broadcast, group, user, subset) to written here, by target kind.",
            r.lag,
            ["target"],
        )
        yield _histogram(
            "wscommands_layer_round_trip_seconds",
            "The hub's canary: a message to itself through the channel layer.",
            {(): r.round_trip},
            [],
        )
        yield _counter(
            "wscommands_layer_canary_failures",
            "Canaries that did not come back in time.",
            r.canary_failures,
        )
        yield _counter(
            "wscommands_resume_streams",
            "Streams named by resume requests, by outcome (recovered or why not).",
            r.resumed,
            ["outcome"],
        )
        yield _counter(
            "wscommands_resume_replayed_pushes", "Missed pushes replayed by resumes.", r.replayed
        )
        yield _counter(
            "wscommands_stream_gaps",
            "Offsets a process skipped after waiting STREAM_REORDER_WAIT for them.",
            r.stream_gaps,
        )
        yield _counter(
            "wscommands_streams_evicted",
            "Streams whose history was dropped over HISTORY_MAX_STREAMS (idle longest first).",
            r.streams_evicted,
        )
        if r.streams_kept is not None:
            yield GaugeMetricFamily(
                "wscommands_streams_kept",
                "Streams with history in the backend, as last seen by this process.",
                value=r.streams_kept,
            )
        with r.worker_lock:  # a consistent copy; worker threads update these
            queue, wait, wait_sum = r.queue, r.wait.cumulative(), r.wait.total
        yield GaugeMetricFamily(
            "wscommands_worker_queue_length", "Sync calls waiting for a worker thread.", value=queue
        )
        yield HistogramMetricFamily(
            "wscommands_worker_wait_seconds",
            "Time a sync call waited for a worker thread.",
            buckets=wait,
            sum_value=wait_sum,
        )


def _key(labels: Any) -> list[str]:
    return list(labels) if isinstance(labels, tuple) else [labels]


def _counter(name: str, doc: str, values: Any, labels: list[str] | None = None) -> Metric:
    if labels is None:
        return CounterMetricFamily(name, doc, value=values)
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, value in list(values.items()):
        family.add_metric(_key(key), value)
    return family


def _histogram(name: str, doc: str, values: dict, labels: list[str]) -> Metric:
    family = HistogramMetricFamily(name, doc, labels=labels)
    for key, histogram in list(values.items()):
        family.add_metric(_key(key), histogram.cumulative(), histogram.total)
    return family
