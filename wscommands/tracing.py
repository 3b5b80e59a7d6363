"""Re-export of :mod:`wscommands.observability.tracing` under its documented older path."""

from .observability.tracing import look_again

__all__ = [
    "look_again",
]
