"""The wire protocol, pure: decoding frames into requests and encoding replies.

No I/O here: the consumer feeds text in and sends what comes out (see docs/protocol.md).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson

from . import logs
from .exceptions import CommandError, InvalidJSON, InvalidRequest, ProtocolError

#: Keys that are never command names. ``authenticate`` is built in, so it is a name users
#: may not register but clients may send.
RESERVED_KEYS = frozenset({"request_id", "errors", "unimplemented", "request"})
RESERVED_NAMES = RESERVED_KEYS | {"authenticate"}
_FORBIDDEN_IN_REQUEST = frozenset({"errors", "unimplemented", "request"})

_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS
# 19 digits in a row may be an integer outside 64 bits (orjson reads those as floats).
_LONG_DIGITS = re.compile(r"\d{19}")
_LONG_DIGITS_BYTES = re.compile(rb"\d{19}")


@dataclass(slots=True)
class Request:
    """One decoded request: its commands in the order written and its ``request_id``."""

    commands: list[tuple[str, Any]]
    request_id: str | int | None = None
    has_request_id: bool = False


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode(text: str | bytes) -> Any:
    """Parse JSON; raises ValueError on anything that is not standard JSON.

    orjson does the common case; the stdlib parser takes over for what orjson refuses and
    for integers beyond 64 bits, which orjson would silently turn into floats.
    """
    long_digits = _LONG_DIGITS_BYTES if isinstance(text, bytes) else _LONG_DIGITS
    if long_digits.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def encode(obj: Any) -> str:
    """Serialise to compact JSON text; raises TypeError/ValueError for what JSON cannot hold.

    NaN and the infinities are refused (ValueError): JSON has no spelling for them, and
    orjson would silently write ``null``.
    """
    try:
        # msgspec Structs, Decimals and sets (typed results and pushes) through their JSON
        # form; orjson only calls this for types it cannot write itself.
        text = orjson.dumps(obj, default=msgspec.to_builtins, option=_ORJSON_OPTIONS)
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


def parse_request(data: Any) -> Request:
    """Turn a decoded JSON document into a :class:`Request` or raise :class:`InvalidRequest`."""
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
    commands = [(name, arg) for name, arg in data.items() if name != "request_id"]
    return Request(commands, request_id, has_request_id)


def parse_frame(text: str) -> Request:
    """Decode a text frame into a request; raises :class:`ProtocolError` subclasses."""
    try:
        data = decode(text)
    except ValueError as exc:
        raise InvalidJSON(f"frame is not valid JSON: {exc}") from None
    return parse_request(data)


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
