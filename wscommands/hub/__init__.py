"""What a process runs to receive messages from the others: its hub (one per event loop),
which owns its channel, its channel-layer groups, its local connections by group and user,
its presence tracker and its operations figures, and writes each message to local peers.

May import: every package above it: conf, observability, wire, _internal, backends, commands,
schema, streams, delivery, presence, ops.
"""

from .process import Hub, get_hub

__all__ = ["Hub", "get_hub"]
