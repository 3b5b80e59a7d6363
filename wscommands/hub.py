"""Re-export of :mod:`wscommands.runtime.hub` under its documented older path."""

from .runtime.hub import Hub

__all__ = [
    "Hub",
]
