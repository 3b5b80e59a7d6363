"""Resumable delivery's streams: positions, history bounds, each connection's cursor (what it
was sent, its replay budget) and the per-process sequencer that keeps each stream in order.

May import: conf, observability, wire, _internal, backends.
"""

from .cursor import StreamCursor

__all__ = ["StreamCursor"]
