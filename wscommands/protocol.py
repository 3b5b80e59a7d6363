"""The wire protocol, pure: decoding frames into requests and encoding replies.

No I/O here: the consumer feeds text in and sends what comes out (see docs/protocol.md).
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson

from . import logs
from .exceptions import CommandError, InvalidJSON, InvalidRequest, ProtocolError

#: Keys that are never command names. ``authenticate`` is built in, so it is a name users
#: may not register but clients may send.
RESERVED_KEYS = frozenset({"request_id", "errors", "unimplemented", "request", "idempotency_key"})
RESERVED_NAMES = RESERVED_KEYS | {"authenticate", "wscommands.resume"}
_FORBIDDEN_IN_REQUEST = frozenset({"errors", "unimplemented", "request"})

_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS
#: 19 digits in a row may be an integer outside 64 bits, which orjson reads as a float: such
#: frames go to the stdlib parser. Found at C speed: every byte but a digit becomes a space.
_LONG_DIGITS = b"0" * 19
#: For the depth check: every byte but brackets, braces and quotes is deleted, braces become
#: brackets.
_NOT_SKELETON = bytes(b for b in range(256) if b not in b'[]{}"')
_AS_BRACKETS = bytes.maketrans(b"{}", b"[]")
_DIGITS_ONLY = bytes(ord("0") if chr(b).isdigit() and b < 128 else ord(" ") for b in range(256))
#: Nesting orjson refuses beyond (its own fixed limit).
ORJSON_MAX_DEPTH = 1024
#: Digits an integer may have (Python's own limit for converting text to int).
MAX_INTEGER_DIGITS = sys.get_int_max_str_digits() or 4300
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")


@dataclass(slots=True)
class Request:
    """One decoded request: its commands in the order written and its ``request_id``."""

    commands: list[tuple[str, Any]]
    request_id: str | int | None = None
    has_request_id: bool = False
    #: The client's key for a request it may retry after a reconnect (docs/protocol.md).
    idempotency_key: str | None = None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class JSONLimitError(ValueError):
    """Valid JSON that is refused: nested too deeply, or an integer with too many digits."""

    def __init__(self, message: str, details: dict[str, Any]):
        super().__init__(message)
        self.details = details


def _too_deep(limit: int) -> JSONLimitError:
    return JSONLimitError(
        f"JSON nested deeper than {limit} levels", {"limit": "MAX_JSON_DEPTH", "max": limit}
    )


def decode(text: str | bytes, max_depth: int | None = None) -> Any:
    """Parse JSON; raises ValueError on anything that is not standard JSON.

    orjson parses first; what it refuses (lone surrogates) and frames holding an integer
    beyond 64 bits (which orjson would turn into a float) are read by the stdlib parser.
    Nesting deeper than ``max_depth`` (orjson's 1024 when None) and integers of more than
    :data:`MAX_INTEGER_DIGITS` digits raise :class:`JSONLimitError`. Every check costs about
    what orjson's parse does, or less (docs/reliability.md).
    """
    limit = ORJSON_MAX_DEPTH if max_depth is None else min(max_depth, ORJSON_MAX_DEPTH)
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if _LONG_DIGITS in raw.translate(_DIGITS_ONLY):
        return _stdlib_decode(text, limit)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):
            raise _too_deep(limit) from None
        return _stdlib_decode(text, limit)
    if raw.count(b"[") + raw.count(b"{") > limit and _deeper_than(raw, limit):
        raise _too_deep(limit)
    return data


def _stdlib_decode(text: str | bytes, limit: int) -> Any:
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise _too_deep(limit) from None
    except ValueError as exc:
        if "integer string conversion" in str(exc):
            raise JSONLimitError(
                f"integer with more than {MAX_INTEGER_DIGITS} digits",
                {"limit": "MAX_INTEGER_DIGITS", "max": MAX_INTEGER_DIGITS},
            ) from None
        raise
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if _deeper_than(raw, limit):
        raise _too_deep(limit)
    return data


def _deeper_than(raw: bytes, limit: int) -> bool:
    """Whether valid JSON ``raw`` nests arrays/objects deeper than ``limit``, at C speed.

    Its skeleton (brackets outside strings, braces as brackets: valid JSON nests properly)
    loses its innermost pairs once per round; more than ``limit`` rounds means deeper.
    """
    skeleton = raw.replace(b"\\\\", b"").replace(b'\\"', b"").translate(_AS_BRACKETS, _NOT_SKELETON)
    if b'"' in skeleton:  # drop what was inside strings
        skeleton = b"".join(skeleton.split(b'"')[::2])
    for _ in range(limit):
        skeleton = skeleton.replace(b"[]", b"")
        if not skeleton:
            return False
    return bool(skeleton)


def encode(obj: Any) -> str:
    """Serialise to compact JSON text; raises TypeError/ValueError for what JSON cannot hold.

    NaN and the infinities are refused (ValueError): JSON has no spelling for them, and
    orjson would silently write ``null``.
    """
    try:
        # msgspec Structs, Decimals and sets (typed results and pushes) through their JSON
        # form; orjson only calls this for types it cannot write itself.
        text = orjson.dumps(obj, default=_to_builtins, option=_ORJSON_OPTIONS)
    except TypeError:
        pass
    else:
        # orjson writes a non-finite float as null: only a text with a null can hide one.
        if b"null" in text and _has_non_finite(obj):
            raise ValueError("NaN and infinities cannot be sent as JSON")
        return text.decode()
    # orjson refuses integers beyond 64 bits and lone surrogates; the stdlib writes them
    # (surrogates as ASCII escapes, so the text stays valid UTF-8), and still refuses
    # NaN and infinities, which JSON has no spelling for.
    try:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _to_builtins(obj: Any) -> Any:
    """What orjson cannot write itself, as JSON-able builtins: pydantic models by their own
    ``model_dump``, everything else (Structs, Decimals, sets) by msgspec."""
    dump = getattr(obj, "model_dump", None)
    if dump is not None and not isinstance(obj, type):
        return dump(mode="json")
    return msgspec.to_builtins(obj)


_SCALARS = frozenset({str, int, bool, type(None)})


def _has_non_finite(obj: Any) -> bool:
    """Whether a NaN or an infinity hides anywhere in what orjson serialised.

    Exact types first: this walk runs for every reply that contains ``null``.
    """
    stack = [obj]
    pop, extend = stack.pop, stack.extend
    while stack:
        value = pop()
        kind = type(value)
        if kind in _SCALARS:
            continue
        if kind is float or isinstance(value, float):
            if value - value != 0.0:  # NaN for NaN and the infinities, 0.0 for the rest
                return True
        elif kind is dict or isinstance(value, dict):
            extend(value.values())
        elif kind is list or kind is tuple or isinstance(value, (list, tuple, set, frozenset)):
            extend(value)
        elif isinstance(value, msgspec.Struct):
            extend(msgspec.structs.astuple(value))
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            extend(getattr(value, field.name) for field in dataclasses.fields(value))
    return False


def is_valid_request_id(value: Any) -> bool:
    """A request_id is a JSON string or integer (never a bool or float)."""
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


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
        if not is_valid_request_id(request_id):
            raise InvalidRequest("request_id must be a string or an integer")
    forbidden = _FORBIDDEN_IN_REQUEST.intersection(data)
    if forbidden:
        raise InvalidRequest(
            f"reserved key(s) in request: {', '.join(sorted(forbidden))}", request_id
        )
    key = data.get("idempotency_key")
    has_key = "idempotency_key" in data
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
    reserved = ("request_id", "idempotency_key")
    commands = [(name, arg) for name, arg in data.items() if name not in reserved]
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
    from .exceptions import CommandFailed

    errors = reply.setdefault("errors", {})
    for key in [k for k in reply if k not in ("errors", "request_id")]:
        if not _encodable(reply[key]):
            logs.unexpected(f"result:{key}", "result of command %r is not JSON-serialisable", key)
            del reply[key]
            errors[key] = CommandFailed("the command's result could not be sent").as_entry()
    for key in list(errors):  # e.g. a ClientError whose details JSON cannot hold
        if not _encodable(errors[key]):
            logs.unexpected(f"error:{key}", "error of command %r is not JSON-serialisable", key)
            errors[key] = CommandFailed("the command's error could not be sent").as_entry()
    return encode(reply)


def _encodable(value: Any) -> bool:
    try:
        encode(value)
    except (TypeError, ValueError):
        return False
    return True
