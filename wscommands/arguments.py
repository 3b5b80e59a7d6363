"""Binding a request's argument to a command's parameters, validated by msgspec before the call.

A :class:`Signature` is built once, when the command is registered: every annotation is
resolved and handed to msgspec there, so an annotation msgspec cannot check (or a name that
cannot be resolved) is refused at start-up, never silently let through. Per request, each
argument costs one ``msgspec.convert`` (or nothing for ``Any`` and unannotated parameters),
and the function receives the converted values: a ``msgspec.Struct``, a dataclass, an
``Enum`` member, a ``datetime`` from its ISO string.

Errors keep the protocol's ``details`` shape: ``missing`` and ``unexpected`` (names),
``wrong_type`` (name -> the expected type as annotated); a value nested inside an argument is
named by its path (``items[2].qty``). A value of the right type that breaks a constraint
(``Annotated[int, Meta(ge=0)]``, a tuple's length) is listed under ``invalid`` (path -> what
was expected). See docs/api.md.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from collections.abc import Callable
from typing import Any

import msgspec
from django.core.exceptions import ImproperlyConfigured

from .exceptions import InvalidArguments

_NONE_TYPES = (None, type(None))
_CONTAINERS = (list, set, frozenset, tuple)
_MSG = re.compile(r"^(?P<text>.*?)(?: - at `(?P<path>\$[^`]*)`)?$", re.S)
_SEGMENT = re.compile(r"\[(\d+|\.\.\.)\]|\.([^.\[]+)")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WRONG_TYPE_MESSAGES = ("Expected `", "Invalid enum value", "Invalid ")


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


def check_annotation(annotation: Any, what: str) -> None:
    """Raise ImproperlyConfigured if msgspec cannot validate and describe ``annotation``.

    ``what`` says where it was written ("parameter 'a' of app.commands.add (file:line)").
    """
    try:
        msgspec.json.Decoder(annotation)
        msgspec.json.schema(annotation)
    except (TypeError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[-1]
        raise ImproperlyConfigured(
            f"{what} is annotated {type_name(annotation)!s}, which wscommands cannot check "
            f"({reason}). Annotate it with a type msgspec validates: int, float, str, bool, "
            "None, list[T], tuple[...], dict[str, T], Literal[...], an Enum, a TypedDict, a "
            "dataclass, a msgspec.Struct (several in a union need a tag), datetime, UUID, "
            "Decimal, Annotated[T, msgspec.Meta(...)] for constraints; or typing.Any to accept "
            "any JSON value unchecked."
        ) from None


def resolve_hints(func: Callable[..., Any], names: list[str], where: str) -> dict[str, Any]:
    """The annotations of ``names`` (parameters or "return"), resolved; Any where absent.

    A name that cannot be resolved (imported only under TYPE_CHECKING, or local to a
    function) raises ImproperlyConfigured: it would otherwise go unchecked.
    """
    namespace = getattr(inspect.unwrap(func), "__globals__", {})
    raw = getattr(func, "__annotations__", {})
    hints: dict[str, Any] = {}
    for name in names:
        if name not in raw:
            hints[name] = Any
            continue
        holder = types.SimpleNamespace(__annotations__={name: raw[name]})
        try:
            hints[name] = typing.get_type_hints(holder, globalns=namespace, include_extras=True)[
                name
            ]
        except Exception as exc:
            label = "the return annotation" if name == "return" else f"parameter {name!r}"
            raise ImproperlyConfigured(
                f"{label} of {where}: the annotation {raw[name]!r} cannot be resolved ({exc}). "
                "Import the type at module level (not only under TYPE_CHECKING) and define it "
                "outside functions, or annotate with typing.Any."
            ) from None
    return hints


class Param:
    """One parameter after the connection: its name, annotation and whether it is required."""

    __slots__ = ("annotation", "checked", "name", "required")

    def __init__(self, name: str, annotation: Any, required: bool):
        self.name = name
        self.annotation = annotation
        self.required = required
        self.checked = annotation is not Any

    def convert(self, value: Any) -> Any:
        """The value as the function gets it; raises ``msgspec.ValidationError``."""
        return msgspec.convert(value, self.annotation) if self.checked else value


class Signature:
    """The parameters a command takes after ``connection``, their types and its result's type."""

    def __init__(self, func: Callable[..., Any], where: str = ""):
        where = where or getattr(func, "__qualname__", repr(func))
        sig = inspect.signature(func)
        all_params = list(sig.parameters.values())
        first = all_params[0] if all_params else None
        params = all_params[1:]  # the first one is the connection
        # The connection is passed by position: a key of its name would clash with it.
        self.connection_name = (
            first.name if first is not None and first.kind is not first.POSITIONAL_ONLY else None
        )
        self.accepts_any_keyword = any(p.kind is p.VAR_KEYWORD for p in params)
        self.accepts_var_positional = any(p.kind is p.VAR_POSITIONAL for p in params)
        named = [p for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
        hints = resolve_hints(func, [p.name for p in named] + ["return"], where)
        self.params: dict[str, Param] = {}
        self.positional: list[Param] = []
        for p in named:
            check_annotation(hints[p.name], f"parameter {p.name!r} of {where}")
            param = Param(p.name, hints[p.name], p.default is inspect.Parameter.empty)
            if p.kind is not p.POSITIONAL_ONLY:
                self.params[p.name] = param
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                self.positional.append(param)
        result = hints["return"]
        check_annotation(result, f"the return annotation of {where}")
        #: The return annotation (Any when absent): the result's schema.
        self.result: Any = result

    @property
    def takes_positional(self) -> bool:
        """Whether a value that is not an object may be sent as the first parameter alone."""
        return bool(self.positional) and not any(p.required for p in self.positional[1:])

    def bind(self, argument: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Turn a request's argument into ``(args, kwargs)``; raise :class:`InvalidArguments`."""
        if argument is None or argument == {}:
            missing = [p.name for p in self.params.values() if p.required]
            if missing:
                raise _invalid(missing=missing)
            return (), {}
        if isinstance(argument, dict):
            return (), self._bind_keywords(argument)
        return (self._bind_positional(argument),), {}

    def _bind_keywords(self, argument: dict[str, Any]) -> dict[str, Any]:
        params = self.params
        kwargs: dict[str, Any] = {}
        matched = 0
        try:
            for key, value in argument.items():
                param = params.get(key)
                if param is None:
                    if not self.accepts_any_keyword or key == self.connection_name:
                        raise _Mismatch
                    kwargs[key] = value
                else:
                    matched += 1
                    kwargs[key] = param.convert(value) if param.checked else value
            if matched < len(params) and any(
                p.required and p.name not in argument for p in params.values()
            ):
                raise _Mismatch
        except (_Mismatch, msgspec.ValidationError):
            raise self._explain(argument) from None
        return kwargs

    def _explain(self, argument: dict[str, Any]) -> InvalidArguments:
        """Every problem of a refused argument object, for ``details`` (the slow path)."""
        found = _Details()
        found.missing += [
            p.name for p in self.params.values() if p.required and p.name not in argument
        ]
        for key, value in argument.items():
            param = self.params.get(key)
            if param is None:
                if not self.accepts_any_keyword or key == self.connection_name:
                    found.unexpected.append(key)
            elif param.checked:
                found.check(param, value)
        return found.error()

    def _bind_positional(self, argument: Any) -> Any:
        if not self.positional:
            if self.accepts_var_positional:
                return argument
            raise InvalidArguments(
                "this command takes no positional argument: send an object of named arguments"
            )
        first = self.positional[0]
        others = [p.name for p in self.positional[1:] if p.required]
        if others:
            raise _invalid(missing=others)
        try:
            return first.convert(argument)
        except msgspec.ValidationError:
            found = _Details()
            found.check(first, argument)
            raise found.error() from None


class _Mismatch(Exception):
    """Internal: the fast path found a problem; the slow path works out which."""


class _Details:
    """The ``details`` of an :class:`InvalidArguments`, collected parameter by parameter."""

    def __init__(self) -> None:
        self.missing: list[str] = []
        self.unexpected: list[str] = []
        self.wrong_type: dict[str, str] = {}
        self.invalid: dict[str, str] = {}

    def check(self, param: Param, value: Any) -> None:
        """Record the first problem msgspec finds in ``value`` (none if it fits)."""
        try:
            param.convert(value)
        except msgspec.ValidationError as exc:
            self.add(param, value, str(exc))

    def add(self, param: Param, value: Any, message: str) -> None:
        """Sort one msgspec message into missing / unexpected / wrong_type / invalid."""
        match = _MSG.match(message)
        text = match["text"] if match else message
        segments = _SEGMENT.findall(match["path"] or "") if match else []
        path, annotation = _walk(param.name, param.annotation, value, segments)
        for prefix, into in (
            ("Object missing required field `", self.missing),
            ("Object contains unknown field `", self.unexpected),
        ):
            if text.startswith(prefix):
                into.append(_join(path, text[len(prefix) : -1]))
                return
        if _is_wrong_type(text):
            self.wrong_type[path] = type_name(annotation)
        else:
            self.invalid[path] = text

    def error(self) -> InvalidArguments:
        return _invalid(self.missing, self.unexpected, self.wrong_type, self.invalid)


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
            return typing.Literal[tuple(tagged)]  # type: ignore[valid-type]
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
    return Any


def _join(path: str, field: str) -> str:
    return (
        f"{path}.{field}"
        if _IDENTIFIER.match(field)
        else f"{path}[{msgspec.json.encode(field).decode()}]"
    )


def _invalid(
    missing: list[str] | None = None,
    unexpected: list[str] | None = None,
    wrong_type: dict[str, str] | None = None,
    invalid: dict[str, str] | None = None,
) -> InvalidArguments:
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
        parts.append("wrong type: " + ", ".join(f"{k} must be {v}" for k, v in wrong_type.items()))
    if invalid:
        details["invalid"] = invalid
        parts.append("invalid: " + ", ".join(f"{k}: {v}" for k, v in invalid.items()))
    return InvalidArguments("; ".join(parts), details)
