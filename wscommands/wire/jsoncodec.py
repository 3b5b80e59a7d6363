"""JSON text to Python values and back, pure: the one place wscommands parses and writes JSON.

orjson does the work; the stdlib covers what it refuses (lone surrogates, integers beyond 64
bits). Frames, replies, pushes, stored state and presence entries all go through here, with
the limits the protocol promises (nesting depth, integer digits, no NaN or infinities;
docs/reliability.md).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any

import msgspec
import orjson

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
    # (Not min(): CPython 3.11's parses its arguments as keywords; this runs per frame.)
    limit = (
        max_depth if max_depth is not None and max_depth < ORJSON_MAX_DEPTH else ORJSON_MAX_DEPTH
    )
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    # (find, not `in`: a bytes `in` first tries the needle as an integer, which costs a
    # formatted TypeError on every call.)
    if raw.translate(_DIGITS_ONLY).find(_LONG_DIGITS) != -1:
        return _stdlib_decode(text, limit)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):
            raise _too_deep(limit) from None
        return _stdlib_decode(text, limit)
    # Deeper than ``limit`` takes more than ``limit`` opening brackets and as many closing
    # ones: most frames are too short to, and are not counted.
    if (
        len(raw) > 2 * limit
        and raw.count(b"[") + raw.count(b"{") > limit
        and _deeper_than(raw, limit)
    ):
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
        if text.find(b"null") != -1 and _has_non_finite(obj):
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
