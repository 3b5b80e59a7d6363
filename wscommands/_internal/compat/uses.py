"""What each fenced internal is for, and the one warning when one is missing."""

from __future__ import annotations

import logging

logger = logging.getLogger("wscommands.connection")

#: What each internal is used for (the warning names the feature that switches off). The
#: part before the dot is the package that must be installed for a warning to be given.
USES = {
    "daphne.handle_reply": "find the socket behind a connection (MAX_INBOX, MAX_OUTGOING_BACKLOG)",
    "uvicorn.protocol_transport": "find uvicorn's transport behind a connection "
    "(MAX_OUTGOING_BACKLOG under uvicorn)",
    "daphne.application_queue": "pause reading a client that sends too fast (MAX_INBOX)",
    "asyncio.queue_items": "weigh the frames daphne holds for a client (MAX_CLIENT_MEMORY)",
    "autobahn.fail_by_drop": "a close frame (1009) for a frame over daphne's own size cap",
    "twisted.write_buffer": "cut off a client that does not read (MAX_OUTGOING_BACKLOG)",
    "channels.session_send": "find the socket behind a session-wrapped connection",
    "asyncio.sighandler_noop": "tell a server's SIGTERM handler from asyncio's placeholder",
    "channels_redis.create_pool": "Redis connections for the redis backend (Sentinel, TLS)",
    "channels_redis.pubsub_connection": "notice a Pub/Sub layer's reconnection to Redis and "
    "deliver the pushes it missed from history",
    "autobahn.disconnected": "tell a client gone under daphne from a failed write "
    "(logged at DEBUG, not as an error)",
    "websockets.connection_closed": "tell a client gone under uvicorn from a failed write "
    "(logged at DEBUG, not as an error)",
}
_warned: set[str] = set()


def warn_once(name: str, what: str) -> None:
    """Log ``what`` and the feature of ``USES[name]`` that switches off, once per process."""
    if name in _warned:
        return
    _warned.add(name)
    logger.warning("wscommands: %s; switched off: %s", what, USES[name])
