"""What a refused argument's ``details`` say: missing, unexpected, wrong_type and invalid.

msgspec and pydantic report a problem as a message and a location inside the value; here it
becomes the protocol's form: the path from the argument's name (``items[2].qty``, with the
dict key msgspec writes as ``[...]`` found again) and, for a wrong type, the type expected
there spelled as annotated (``int``, ``list[int]``, ``'a' | 'b'``). See docs/api.md.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any

import msgspec

from ..wire.exceptions import InvalidArguments
from . import pydantic_models as models

_NONE_TYPES = (None, type(None))
_CONTAINERS = (list, set, frozenset, tuple)
_MSG = re.compile(r"^(?P<text>.*?)(?: - at `(?P<path>\$[^`]*)`)?$", re.S)
_SEGMENT = re.compile(r"\[(\d+|\.\.\.)\]|\.([^.\[]+)")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def type_name(annotation: Any) -> str:
    """An annotation as ``details.wrong_type`` spells it: ``int``, ``list[int]``, ``str | None``."""
    if annotation in _NONE_TYPES:
        return "None"
    if annotation is Any:
        return "Any"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(arg) for arg in args)
    if origin is typing.Literal:
        return " | ".join(repr(arg) for arg in args)
    if origin is not None:
        spelled = ", ".join("..." if a is Ellipsis else type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{spelled}]"
    return getattr(annotation, "__name__", str(annotation))


class Details:
    """The ``details`` of an :class:`InvalidArguments`, collected parameter by parameter."""

    def __init__(self) -> None:
        self.missing: list[str] = []
        self.unexpected: list[str] = []
        self.wrong_type: dict[str, str] = {}
        self.wrong_type_at: dict[str, str] = {}
        self.invalid: dict[str, str] = {}

    def add_wrong_type(self, name: str, annotation: Any, path: str, expected: str) -> None:
        """Argument ``name`` does not match ``annotation``; at ``path`` ``expected`` was due.

        ``wrong_type`` keeps the protocol's form (argument name -> its annotated type);
        a value inside the argument is also named by its path in ``wrong_type_at``.
        """
        self.wrong_type[name] = type_name(annotation)
        if path != name:
            self.wrong_type_at[path] = expected

    def add_pydantic(
        self, name: str, annotation: Any, location: tuple[Any, ...], kind: str, text: str
    ) -> None:
        """Sort one pydantic error about argument ``name`` into the keys."""
        path, argument_annotation = name, annotation
        for part in location:
            annotation = _unwrap(annotation, part)
            if isinstance(part, int):
                path += f"[{part}]"
                annotation = _item_type(annotation, part)
                continue
            path = _join(path, str(part))
            if typing.get_origin(annotation) is dict:
                annotation = _dict_value_type(annotation)
            else:
                annotation = _field_type(annotation, str(part), {})
        if kind == "missing":
            self.missing.append(path)
        elif kind == "extra_forbidden":
            self.unexpected.append(path)
        elif kind in models.CONSTRAINTS:
            self.invalid[path] = text
        else:
            self.add_wrong_type(name, argument_annotation, path, type_name(annotation))

    def add_msgspec(self, name: str, annotation: Any, value: Any, message: str) -> None:
        """Sort one msgspec message about argument ``name`` (sent as ``value``) into the keys."""
        match = _MSG.match(message)
        text = match["text"] if match else message
        segments = _SEGMENT.findall(match["path"] or "") if match else []
        path, inner = _walk(name, annotation, value, segments)
        for prefix, into in (
            ("Object missing required field `", self.missing),
            ("Object contains unknown field `", self.unexpected),
        ):
            if text.startswith(prefix):
                into.append(_join(path, text[len(prefix) : -1]))
                return
        if _is_wrong_type(text):
            self.add_wrong_type(name, annotation, path, type_name(inner))
        else:
            self.invalid[path] = text

    def error(self) -> InvalidArguments:
        """The error to raise, with what was collected."""
        return invalid_arguments(
            self.missing, self.unexpected, self.wrong_type, self.invalid, self.wrong_type_at
        )


def _is_wrong_type(text: str) -> bool:
    """msgspec's "Expected `int`, got `str`", "Invalid enum value", "Invalid UUID"...

    but not a constraint: "Expected `int` >= 0", "Expected `array` of length 2, got 3".
    """
    if text.startswith("Expected `"):
        return re.fullmatch(r"Expected `[^`]*`, got `[^`]*`", text) is not None
    return text.startswith("Invalid ")


def _walk(
    name: str, annotation: Any, value: Any, segments: list[tuple[str, str]]
) -> tuple[str, Any]:
    """Follow msgspec's error path into the value: ``(items[2].qty, the annotation there)``.

    msgspec writes ``[...]`` for a dict key; the key is found again here by checking each
    entry. Where the annotation cannot be followed (a union of containers), the path stops.
    """
    path = name
    for index, field in segments:
        annotation = _unwrap(annotation, value)
        if index == "...":
            if not isinstance(value, dict):
                break
            value_type = _dict_value_type(annotation)
            key = _failing_key(value, value_type)
            if key is None:
                break
            path += (
                f".{key}"
                if _IDENTIFIER.match(str(key))
                else f"[{msgspec.json.encode(key).decode()}]"
            )
            annotation, value = value_type, value[key]
        elif index:
            i = int(index)
            if not isinstance(value, list) or i >= len(value):
                break
            path += f"[{i}]"
            annotation, value = _item_type(annotation, i), value[i]
        else:
            if not isinstance(value, dict):
                break
            path += f".{field}"
            annotation, value = _field_type(annotation, field, value), value.get(field)
    return path, annotation


def _unwrap(annotation: Any, value: Any) -> Any:
    """Strip ``Annotated``; of ``X | None`` keep X when the value is not None."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and value is not None:
        others = [a for a in typing.get_args(annotation) if a not in _NONE_TYPES]
        if len(others) == 1:
            return _unwrap(others[0], value)
    return annotation


def _dict_value_type(annotation: Any) -> Any:
    args = typing.get_args(annotation)
    return args[1] if typing.get_origin(annotation) is dict and len(args) == 2 else Any


def _failing_key(value: dict[Any, Any], value_type: Any) -> Any:
    for key, item in value.items():
        try:
            msgspec.convert(item, value_type)
        except msgspec.ValidationError:
            return key
    return None


def _item_type(annotation: Any, index: int) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is tuple and args and args[-1] is not Ellipsis:
        return args[index] if index < len(args) else Any
    if origin in _CONTAINERS and args:
        return args[0]
    return Any


def _field_type(annotation: Any, field: str, value: Any) -> Any:
    """The annotation of ``field`` in a Struct, dataclass or TypedDict (by its JSON name).

    In a union of tagged Structs: the tag field is one of their tags, any other field is
    looked up in the member the value's tag names.
    """
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        configs = {
            member: member.__struct_config__
            for member in typing.get_args(annotation)
            if isinstance(member, type) and issubclass(member, msgspec.Struct)
        }
        tagged = {c.tag: m for m, c in configs.items() if c.tag_field == field}
        if tagged:
            return typing.Literal[tuple(tagged)]
        for member, config in configs.items():
            if config.tag_field and value.get(config.tag_field) == config.tag:
                return _field_type(member, field, value)
        return Any
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        for f in msgspec.structs.fields(annotation):
            if f.encode_name == field:
                return f.type
        return Any
    if dataclasses.is_dataclass(annotation) or typing.is_typeddict(annotation):
        hints = typing.get_type_hints(annotation, include_extras=True)
        hint = hints.get(field, Any)
        if typing.get_origin(hint) in (typing.Required, typing.NotRequired):
            hint = typing.get_args(hint)[0]
        return hint
    return models.field_annotation(annotation, field)


def _has_path_in(name: str, paths: dict[str, str] | None) -> bool:
    return any(p.startswith((f"{name}[", f"{name}.")) for p in paths or ())


def _join(path: str, field: str) -> str:
    return (
        f"{path}.{field}"
        if _IDENTIFIER.match(field)
        else f"{path}[{msgspec.json.encode(field).decode()}]"
    )


def invalid_arguments(
    missing: list[str] | None = None,
    unexpected: list[str] | None = None,
    wrong_type: dict[str, str] | None = None,
    invalid: dict[str, str] | None = None,
    wrong_type_at: dict[str, str] | None = None,
) -> InvalidArguments:
    """An :class:`InvalidArguments` whose message says in words what ``details`` lists."""
    details: dict[str, Any] = {}
    parts = []
    if missing:
        details["missing"] = missing
        parts.append(f"missing argument{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
    if unexpected:
        details["unexpected"] = unexpected
        parts.append(
            f"unexpected argument{'s' if len(unexpected) > 1 else ''}: {', '.join(unexpected)}"
        )
    if wrong_type:
        details["wrong_type"] = wrong_type
        # In words, the innermost place where the value went wrong.
        spelled = {
            **{k: v for k, v in wrong_type.items() if not _has_path_in(k, wrong_type_at)},
            **(wrong_type_at or {}),
        }
        parts.append("wrong type: " + ", ".join(f"{k} must be {v}" for k, v in spelled.items()))
    if wrong_type_at:
        details["wrong_type_at"] = wrong_type_at
    if invalid:
        details["invalid"] = invalid
        parts.append("invalid: " + ", ".join(f"{k}: {v}" for k, v in invalid.items()))
    return InvalidArguments("; ".join(parts), details)
