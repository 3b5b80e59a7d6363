"""The wire protocol, pure: requests, replies and guard decisions.

No I/O here: the consumer feeds text in and sends what comes out (see docs/protocol.md).
JSON itself is :mod:`.jsoncodec`'s; close codes and the other constants :mod:`.codes`'.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..observability import logs
from .codes import RESUME
from .exceptions import CommandError, CommandFailed, InvalidJSON, InvalidRequest, ProtocolError
from .jsoncodec import JSONLimitError, decode, encode

#: Keys that are never command names. ``authenticate`` is built in, so it is a name users
#: may not register but clients may send.
RESERVED_KEYS = frozenset({"request_id", "errors", "unimplemented", "request", "idempotency_key"})
RESERVED_NAMES = RESERVED_KEYS | {"authenticate", RESUME}
_FORBIDDEN_IN_REQUEST = frozenset({"errors", "unimplemented", "request"})
#: The keys of a request that are not commands.
_NOT_COMMANDS = ("request_id", "idempotency_key")
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")


@dataclass(frozen=True, slots=True)
class Decision:
    """What a guard decided; the caller acts on it (guards never send or close themselves).

    ``admit``: go on with the frame or connection. ``reply``: a reply object to send
    first. ``close``: a close code to close the connection with afterwards. ``rest``: seconds
    not to read the client at all (it is over its rate; under daphne only).
    """

    admit: bool = True
    reply: dict[str, Any] | None = None
    close: int | None = None
    rest: float = 0.0


#: Go on.
ADMIT = Decision()


def refuse(
    reply: dict[str, Any] | None = None, close: int | None = None, rest: float = 0.0
) -> Decision:
    """A decision to stop here: send ``reply`` if given, then close with ``close`` if given;
    ``rest``: stop reading the client for that many seconds."""
    return Decision(False, reply, close, rest)


@dataclass(slots=True)
class Request:
    """One decoded request: its commands in the order written and its ``request_id``."""

    commands: list[tuple[str, Any]]
    request_id: str | int | None = None
    has_request_id: bool = False
    #: The client's key for a request it may retry after a reconnect (docs/protocol.md).
    idempotency_key: str | None = None


#: The types a decoded request_id may have (decoded JSON has these exact types; a bool's
#: type is ``bool``, so true and false are refused).
_REQUEST_ID_TYPES = (str, int)


def is_valid_request_id(value: Any) -> bool:
    """A request_id (of decoded JSON) is a string or an integer (never a bool or float)."""
    return type(value) in _REQUEST_ID_TYPES


def parse_request(data: Any, max_commands: int | None = None) -> Request:
    """Turn a decoded JSON document into a :class:`Request` or raise :class:`InvalidRequest`.

    More than ``max_commands`` commands (None: no limit) is refused too.
    """
    if not isinstance(data, dict):
        raise InvalidRequest(f"a request must be a JSON object, not {json_type_name(data)}")
    request_id = None
    has_request_id = "request_id" in data
    if has_request_id:
        request_id = data["request_id"]
        if type(request_id) not in _REQUEST_ID_TYPES:  # (is_valid_request_id, per frame)
            raise InvalidRequest("request_id must be a string or an integer")
    if not _FORBIDDEN_IN_REQUEST.isdisjoint(data):  # (no set built per request)
        forbidden = _FORBIDDEN_IN_REQUEST.intersection(data)
        raise InvalidRequest(
            f"reserved key(s) in request: {', '.join(sorted(forbidden))}", request_id
        )
    has_key = "idempotency_key" in data
    key = data["idempotency_key"] if has_key else None
    if has_key and not (isinstance(key, str) and _IDEMPOTENCY_KEY.fullmatch(key)):
        raise InvalidRequest(
            "idempotency_key must be 16 to 64 characters of A-Z, a-z, 0-9, '_' and '-'",
            request_id,
        )
    if max_commands is not None and len(data) - has_request_id - has_key > max_commands:
        raise InvalidRequest(
            f"more than {max_commands} commands in one request",
            request_id,
            {"limit": "MAX_COMMANDS_PER_REQUEST", "max": max_commands},
        )
    if has_key:
        commands = [(n, arg) for n, arg in data.items() if n not in _NOT_COMMANDS]
    else:
        commands = list(data.items())
        if has_request_id:  # (not a comprehension: this is most frames, and it costs more)
            del commands[list(data).index("request_id")]
    return Request(commands, request_id, has_request_id, key)


def parse_frame(
    text: str, max_depth: int | None = None, max_commands: int | None = None
) -> Request:
    """Decode a text frame into a request; raises :class:`ProtocolError` subclasses.

    Valid JSON over a limit (``max_depth``, integer digits, ``max_commands``) is an
    :class:`InvalidRequest` with ``details`` naming the limit; other JSON errors are
    :class:`InvalidJSON`.
    """
    try:
        data = decode(text, max_depth)
    except JSONLimitError as exc:
        raise InvalidRequest(str(exc), details=exc.details) from None
    except ValueError as exc:
        raise InvalidJSON(f"frame is not valid JSON: {exc}") from None
    return parse_request(data, max_commands)


def error_reply(
    error: ProtocolError | CommandError, request_id: str | int | None = None
) -> dict[str, Any]:
    """The reply to a refused frame: ``{"errors": {"request": {...}}}`` (+ its request_id).

    ``request_id`` defaults to the one a :class:`ProtocolError` could read from the frame.
    """
    if request_id is None:
        request_id = getattr(error, "request_id", None)
    reply: dict[str, Any] = {"errors": {"request": error.as_entry()}}
    if request_id is not None:
        reply["request_id"] = request_id
    return reply


def finish_reply(
    response: dict[str, Any], errors: dict[str, Any], unimplemented: list[str], request: Request
) -> dict[str, Any] | None:
    """Complete a reply; None when the protocol says no reply is sent."""
    if unimplemented:
        errors["unimplemented"] = unimplemented
    if errors:
        response["errors"] = errors
    if request.has_request_id:
        response["request_id"] = request.request_id
    elif not response:
        return None
    return response


def json_type_name(value: Any) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def encode_reply(reply: dict[str, Any]) -> str:
    """Encode a reply; a result JSON cannot hold becomes that command's ``command_failed``."""
    try:
        return encode(reply)
    except (TypeError, ValueError):
        pass
    errors = reply.setdefault("errors", {})
    for key in [k for k in reply if k not in ("errors", "request_id")]:
        if _cannot_encode(reply[key], "result", key):
            del reply[key]
            errors[key] = CommandFailed("the command's result could not be sent").as_entry()
    for key in list(errors):  # e.g. a ClientError whose details JSON cannot hold
        if _cannot_encode(errors[key], "error", key):
            errors[key] = CommandFailed("the command's error could not be sent").as_entry()
    return encode(reply)


def _cannot_encode(value: Any, what: str, command: str) -> bool:
    """Whether ``value`` cannot be sent as JSON; logs why.

    A type JSON has no form for is the command's bug (ERROR); a value it cannot spell (NaN,
    an infinity, a lone surrogate) usually comes from the client's input (``div`` of 1e308 by
    1e-308), so it is a client event (INFO), or one client could fill the log with errors.
    """
    try:
        encode(value)
    except TypeError:
        logs.unexpected(
            f"{what}:{command}", f"{what} of command %r is not JSON-serialisable", command
        )
        return True
    except ValueError as exc:
        logs.client_event(
            f"{what}:{command}", f"{what} of command %r cannot be sent as JSON: %s", command, exc
        )
        return True
    return False
