"""Every constant of the wire, defined once: close codes, error codes, resume reasons, the
reserved keys of resumable delivery and the limits a client must know (docs/protocol.md).

Imports nothing, so any layer may import it (observability counts close codes by these).
The browser client's copy (the generated block of wscommands.js, .classic.js and .d.ts) is
written from this module by ``python -m wscommands.wire.jsconstants``; tests/test_wire_codes.py
fails while it is stale or the client's values differ.
"""

from __future__ import annotations


class CloseCode:
    """The close codes the server sends (docs/protocol.md, "Close codes").

    Plain ints, not an IntEnum: autobahn (daphne) refuses a close code whose type is not
    exactly ``int``.
    """

    NORMAL = 1000
    #: ``authenticate`` failed.
    AUTHENTICATION_FAILED = 3000
    FORBIDDEN = 3003
    #: The client keeps sending frames the server refuses.
    BAD_REQUEST = 4400
    #: The connection's session ended (logged out, deleted, expired): sign in again.
    SESSION_ENDED = 4401
    TOO_BIG = 4413
    TOO_MANY_REQUESTS = 4429
    #: Unexpected server error, e.g. an ``on_connect`` hook raised.
    SERVER_ERROR = 4500
    #: The server is shutting down or restarting: reconnect (soon, elsewhere).
    SHUTTING_DOWN = 4503


#: Every close code the server sends, with its meaning (as in docs/protocol.md).
CLOSE_CODES: dict[int, str] = {
    CloseCode.NORMAL: "normal closure",
    CloseCode.AUTHENTICATION_FAILED: "authentication failed",
    CloseCode.FORBIDDEN: "forbidden",
    CloseCode.BAD_REQUEST: "bad request: the client keeps sending what the server refuses",
    CloseCode.SESSION_ENDED: "session ended (logged out, deleted or expired): sign in again",
    CloseCode.TOO_BIG: "message too big",
    CloseCode.TOO_MANY_REQUESTS: "too many requests",
    CloseCode.SERVER_ERROR: "unexpected server error",
    CloseCode.SHUTTING_DOWN: "server shutting down or restarting: reconnect",
}


class TransportCloseCode:
    """RFC 6455 codes a connection may end with that wscommands itself never sends: the
    browser's, or the server's WebSocket layer's (metrics count each under its own label)."""

    GOING_AWAY = 1001
    #: The close frame carried no code.
    NO_STATUS = 1005
    #: No close frame at all (the TCP connection dropped).
    ABNORMAL = 1006
    POLICY_VIOLATION = 1008
    #: A frame over the WebSocket server's own size cap (daphne's, 1 MiB by default).
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012


#: The transport's codes, with their meaning.
TRANSPORT_CLOSE_CODES: dict[int, str] = {
    TransportCloseCode.GOING_AWAY: "going away",
    TransportCloseCode.NO_STATUS: "no status code",
    TransportCloseCode.ABNORMAL: "abnormal closure: no close frame",
    TransportCloseCode.POLICY_VIOLATION: "policy violation",
    TransportCloseCode.MESSAGE_TOO_BIG: "message too big for the WebSocket server",
    TransportCloseCode.INTERNAL_ERROR: "internal error of the WebSocket server",
    TransportCloseCode.SERVICE_RESTART: "service restart",
}


class ErrorCode:
    """The ``code`` of an ``errors`` entry (docs/protocol.md, "Errors"); each is the code of
    one exception type of :mod:`.exceptions`."""

    CLIENT_ERROR = "client_error"
    UNKNOWN_COMMAND = "unknown_command"
    INVALID_ARGUMENTS = "invalid_arguments"
    NOT_AUTHENTICATED = "not_authenticated"
    PERMISSION_DENIED = "permission_denied"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    COMMAND_FAILED = "command_failed"
    #: A whole frame refused (``errors.request``): not JSON, or not a request object.
    INVALID_JSON = "invalid_json"
    INVALID_REQUEST = "invalid_request"


#: Every error code of the protocol.
ERROR_CODES: tuple[str, ...] = tuple(v for k, v in vars(ErrorCode).items() if k.isupper())

# Resumable delivery (docs/protocol.md, "Resumable delivery") -------------------------------

#: The key of a push's position, added for connections that opted in (``?resume=1``).
POSITION = "wscommands.position"
#: The frame announcing the positions of the streams a connection receives.
STREAMS = "wscommands.streams"
#: The resume request, and its reply.
RESUME = "wscommands.resume"
#: Most streams one resume request may name; more get ``invalid_arguments``.
RESUME_MAX_STREAMS = 100

#: Why a stream was not recovered (a resume reply's ``reason``): the epoch changed, the pushes
#: after the position are no longer kept, the connection may not receive the stream, or the
#: position is malformed, unknown or one the stream never reached.
HISTORY_LOST = "history_lost"
TOO_FAR_BEHIND = "too_far_behind"
FORBIDDEN = "forbidden"
INVALID = "invalid"
RESUME_REASONS: tuple[str, ...] = (HISTORY_LOST, TOO_FAR_BEHIND, FORBIDDEN, INVALID)
