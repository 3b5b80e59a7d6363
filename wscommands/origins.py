"""Re-export of :mod:`wscommands.guards.origins` under its documented older path."""

from .guards.origins import HostOriginValidator, origin_allowed

__all__ = [
    "HostOriginValidator",
    "origin_allowed",
]
