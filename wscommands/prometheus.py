"""Re-export of :mod:`wscommands.observability.prometheus` under its documented older path."""

from .observability.prometheus import Collector

__all__ = [
    "Collector",
]
