"""An OpenTelemetry span per command, when ``opentelemetry-api`` is installed.

Spans follow the ``rpc.*`` semantic conventions (``rpc.system`` = ``wscommands``,
``rpc.method`` = the command). They are made only once the application has set a real
tracer provider (``opentelemetry-sdk`` or a distro): with the API's default no-op
provider, or without the package, :func:`command_span` costs one check and does nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

try:
    from opentelemetry import trace
except ImportError:  # optional dependency
    trace = None

_NOOP_PROVIDERS: tuple[type, ...] = (
    (trace.ProxyTracerProvider, trace.NoOpTracerProvider) if trace is not None else ()
)


def _tracer() -> Any:
    if trace is None:
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, _NOOP_PROVIDERS):
        return None
    return provider.get_tracer("wscommands")


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


def command_span(name: str, connection_id: str) -> contextlib.AbstractContextManager[Any]:
    """A context manager around one command: an OpenTelemetry span, or nothing.

    The span records the exception and an error status when the command raises.
    """
    tracer = _tracer()
    if tracer is None:
        return contextlib.nullcontext()
    return _span(tracer, name, connection_id)
