"""Resumable delivery's streams: positions, history bounds and each connection's cursor.

May import: conf, observability, wire, _internal, backends.
"""

from .cursor import StreamCursor

__all__ = ["StreamCursor"]
