"""Re-export of :mod:`wscommands.observability.logs` under its documented older path."""

from .observability.logs import ContextFilter, JSONFormatter, logging_config

__all__ = [
    "ContextFilter",
    "JSONFormatter",
    "logging_config",
]
