"""An OpenTelemetry span per command, when ``opentelemetry-api`` is installed.

Spans follow the ``rpc.*`` semantic conventions (``rpc.system`` = ``wscommands``,
``rpc.method`` = the command). They are made only once the application has set a real
tracer provider (``opentelemetry-sdk`` or a distro): with the API's default no-op
provider, or without the package, :func:`command_span` costs one check and does nothing.
A provider set while commands run is found within :data:`RECHECK` seconds.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

try:
    from opentelemetry import trace
except ImportError:  # optional dependency
    trace = None  # type: ignore[assignment]

_NOOP_PROVIDERS: tuple[type, ...] = (
    (trace.ProxyTracerProvider, trace.NoOpTracerProvider) if trace is not None else ()
)


#: Seconds between two looks for a tracer provider while none is set (a look reads the
#: environment: too dear for every command).
RECHECK = 1.0
_tracer_found: Any = None
#: What a command runs in without a tracer (reusable: it holds nothing).
_NO_SPAN: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
_next_look = 0.0


def look_again() -> None:
    """Look for a tracer provider at the next command, not up to :data:`RECHECK` s later.

    Call it after ``trace.set_tracer_provider()`` when commands already ran in this process
    and the very next ones must be traced.
    """
    global _next_look
    _next_look = 0.0


def _tracer() -> Any:
    global _tracer_found, _next_look
    if _tracer_found is not None or trace is None:
        return _tracer_found
    now = time.monotonic()
    if now < _next_look:
        return None
    _next_look = now + RECHECK
    provider = trace.get_tracer_provider()
    if isinstance(provider, _NOOP_PROVIDERS):
        return None
    # OpenTelemetry sets the global provider once: its tracer can be kept.
    _tracer_found = provider.get_tracer("wscommands")
    return _tracer_found


@contextlib.contextmanager
def _span(tracer: Any, name: str, connection_id: str) -> Iterator[Any]:
    with tracer.start_as_current_span(
        f"wscommands/{name}",
        kind=trace.SpanKind.SERVER,
        attributes={
            "rpc.system": "wscommands",
            "rpc.service": "wscommands",
            "rpc.method": name,
            "wscommands.connection_id": connection_id,
        },
    ) as span:
        yield span


def enabled() -> bool:
    """Whether :func:`command_span` makes spans now: a caller may skip entering it when not
    (the usual case, checked per command)."""
    return _tracer() is not None


def command_span(name: str, connection_id: str) -> contextlib.AbstractContextManager[Any]:
    """A context manager around one command: an OpenTelemetry span, or nothing.

    The span records the exception and an error status when the command raises.
    """
    tracer = _tracer()
    if tracer is None:
        return _NO_SPAN
    return _span(tracer, name, connection_id)
