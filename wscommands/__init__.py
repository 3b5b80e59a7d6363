"""wscommands: JSON commands over WebSockets for Django Channels.

The browser sends ``{"command": argument, ...}``; the server runs the registered function
for each and replies with ``{"command": result, ...}``. See README.md and docs/.
"""

from ._internal.threads import run_sync, send_signal
from .backends.global_state import get_global_state, increment_global_state, update_global_state
from .commands.registry import (
    Command,
    Push,
    Registry,
    authorize_join,
    command,
    declare_push,
    on_connect,
    on_disconnect,
    registry,
)
from .connection.connection import Connection
from .connection.timers import CallHandle
from .delivery.messaging import broadcast, send_to_group, send_to_subset
from .presence.events import PRESENCE_GROUP
from .presence.queries import get_presence, get_presence_state
from .server.consumer import CommandConsumer
from .wire.exceptions import (
    BackendUnavailable,
    ClientError,
    CommandError,
    CommandFailed,
    InvalidArguments,
    NotAuthenticated,
    PermissionDenied,
    RateLimited,
    Unavailable,
    UnknownCommand,
)

__version__ = "0.1.0"

__all__ = [
    "PRESENCE_GROUP",
    "BackendUnavailable",
    "CallHandle",
    "ClientError",
    "Command",
    "CommandConsumer",
    "CommandError",
    "CommandFailed",
    "Connection",
    "InvalidArguments",
    "NotAuthenticated",
    "PermissionDenied",
    "Push",
    "RateLimited",
    "Registry",
    "Unavailable",
    "UnknownCommand",
    "authorize_join",
    "broadcast",
    "command",
    "declare_push",
    "get_global_state",
    "get_presence",
    "get_presence_state",
    "increment_global_state",
    "on_connect",
    "on_disconnect",
    "registry",
    "run_sync",
    "send_signal",
    "send_to_group",
    "send_to_subset",
    "update_global_state",
]
