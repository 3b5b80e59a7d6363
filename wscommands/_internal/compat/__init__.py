"""Every use of another package's private internals, fenced in this one package.

wscommands leans on a few things daphne, Twisted, autobahn, uvicorn, websockets, asyncio,
Channels and channels_redis do not promise. Each is reached only from here (``servers``: the
sockets behind a connection; ``glue``: asyncio, Channels and channels_redis), each has a probe
in ``probes.missing_internals``, run at start-up (``apps.py``: a warning, once, for each one
missing) and by ``tests/test_compat.py`` against the pinned versions. When one is missing the
feature that needs it switches off (the warning, from ``uses``, says which), nothing else
breaks. ``picows_server`` (picows's server protocol, built by hand for the engine) is not
imported here: only the engine needs picows, and it checks it when it starts.

Verified with daphne 4.2.3, autobahn 26.11.1, Twisted 26.10.0, uvicorn 0.54.0, websockets
17.4, channels 4.3.2, channels-redis 4.3.0, asgiref 3.13.0, picows 2.3.1 and CPython 3.11's
asyncio.
"""

from .glue import (
    channel_suffix,
    close_with_loop,
    is_asyncio_placeholder,
    layer_receivers,
    redis_pool,
)
from .probes import missing_internals, warn_missing_once
from .servers import ServerSocket, is_closed_error, server_socket, unwrap_send
from .uses import USES

__all__ = [
    "USES",
    "ServerSocket",
    "channel_suffix",
    "close_with_loop",
    "is_asyncio_placeholder",
    "is_closed_error",
    "layer_receivers",
    "missing_internals",
    "redis_pool",
    "server_socket",
    "unwrap_send",
    "warn_missing_once",
]
