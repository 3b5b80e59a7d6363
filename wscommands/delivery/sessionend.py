"""A Django session that ended (logout, deletion) closes its sockets on every process.

:func:`end_session` sends one message to the channel-layer group every hub is in; each hub
closes its local connections of that session with 4401 ``session_ended`` (docs/protocol.md).
The message carries a hash of the session key, never the key (a key is a password).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from collections.abc import Iterable
from typing import Any

from ..conf import wscommands_settings
from ..wire.codes import CloseCode
from .messaging import all_group_name, get_layer
from .peer import Peer

logger = logging.getLogger("wscommands.connection")

#: The message every hub receives when a session ended.
SESSION_ENDED_TYPE = "wscommands.session_ended"


@functools.lru_cache(maxsize=16384)
def session_digest(session_key: str) -> str:
    """What stands for a session key outside this process (in messages and Redis keys).

    Cached: every ended session is compared with each local connection's session."""
    return hashlib.sha256(session_key.encode()).hexdigest()[:32]


async def end_session(session_key: str) -> None:
    """Tell every process that ``session_key`` ended: its sockets close with 4401.

    Bounded by ``CHANNEL_LAYER_TIMEOUT``; raises what the layer raises (callers log it: the
    periodic ``SESSION_CHECK_INTERVAL`` check is the fallback).
    """
    message = {"type": SESSION_ENDED_TYPE, "session": session_digest(session_key)}
    async with asyncio.timeout(wscommands_settings.CHANNEL_LAYER_TIMEOUT):
        await get_layer().group_send(all_group_name(), message)


async def close_ended(peers: Iterable[Peer], message: dict[str, Any]) -> int:
    """Close (4401) the ``peers`` of the session a :data:`SESSION_ENDED_TYPE` message names."""
    digest = message.get("session")
    closed = 0
    for peer in list(peers):
        key = getattr(peer.session, "session_key", None)
        if key and session_digest(key) == digest:
            logger.info("connection %s: session ended, closing with 4401", peer.id)
            await peer.close(CloseCode.SESSION_ENDED)
            closed += 1
    return closed
