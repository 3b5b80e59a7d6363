"""Binding a request's argument to a command's parameters, checked before the call.

A :class:`Signature` is built once, when the command is registered, so that the per-request
work is a few dict look-ups and ``isinstance`` checks.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .exceptions import InvalidArguments

Checker = Callable[[Any], bool]

#: Integers beyond this are not numbers a ``float`` parameter can hold (Python raises
#: OverflowError converting them): a client's mistake, refused as a wrong type.
_FLOAT_INT_LIMIT = 2**1024


def _is_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and -_FLOAT_INT_LIMIT < value < _FLOAT_INT_LIMIT
    )


_SIMPLE: dict[Any, Checker] = {
    int: lambda v: isinstance(v, int) and not isinstance(v, bool),
    float: _is_float,
    str: lambda v: isinstance(v, str),
    bool: lambda v: isinstance(v, bool),
    list: lambda v: isinstance(v, list),
    dict: lambda v: isinstance(v, dict),
    type(None): lambda v: v is None,
}


def _always(_value: Any) -> bool:
    return True


def type_name(annotation: Any) -> str:
    """An annotation as ``details.wrong_type`` spells it: ``int``, ``list[int]``, ``str | None``."""
    if annotation is type(None) or annotation is None:
        return "None"
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(arg) for arg in typing.get_args(annotation))
    if origin is not None:
        args = ", ".join(type_name(arg) for arg in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    return getattr(annotation, "__name__", str(annotation))


def make_checker(annotation: Any) -> Checker | None:
    """A predicate for the simple annotations; None where the annotation is not checked."""
    if annotation in _SIMPLE:
        return _SIMPLE[annotation]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        checkers = [make_checker(arg) for arg in args]
        if any(c is None for c in checkers):
            return None
        return lambda v: any(c(v) for c in checkers)  # type: ignore[misc]
    if origin is list and len(args) == 1:
        item = make_checker(args[0]) or _always
        return lambda v: isinstance(v, list) and all(item(x) for x in v)
    if origin is dict and len(args) == 2 and args[0] is str:
        value = make_checker(args[1]) or _always
        return lambda v: isinstance(v, dict) and all(value(x) for x in v.values())
    if origin in (list, dict):
        return _SIMPLE[origin]
    return None


@dataclass(slots=True)
class _Param:
    name: str
    required: bool
    checker: Checker | None
    type_name: str


class Signature:
    """The parameters a command takes after ``connection``, and how to check them."""

    def __init__(self, func: Callable[..., Any]):
        sig = inspect.signature(func)
        try:
            hints = typing.get_type_hints(func)
        except Exception:  # a name only type checkers import, or local to a function
            hints = _resolvable_hints(func)
        params = list(sig.parameters.values())[1:]  # the first one is the connection
        first = next(iter(sig.parameters.values()), None)
        # The connection is passed by position: a key of its name would clash with it.
        self.connection_name = (
            first.name if first is not None and first.kind is not first.POSITIONAL_ONLY else None
        )
        self.accepts_any_keyword = any(p.kind is p.VAR_KEYWORD for p in params)
        self.accepts_var_positional = any(p.kind is p.VAR_POSITIONAL for p in params)
        self.params: dict[str, _Param] = {}
        self.positional: list[_Param] = []
        for p in params:
            if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                continue
            annotation = hints.get(p.name, inspect.Parameter.empty)
            checker = None if annotation is inspect.Parameter.empty else make_checker(annotation)
            param = _Param(
                p.name,
                p.default is inspect.Parameter.empty,
                checker,
                type_name(annotation) if checker else "",
            )
            if p.kind is not p.POSITIONAL_ONLY:
                self.params[p.name] = param
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                self.positional.append(param)

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
        missing = [p.name for p in self.params.values() if p.required and p.name not in argument]
        unexpected = [
            key
            for key in argument
            if key not in self.params
            and (not self.accepts_any_keyword or key == self.connection_name)
        ]
        wrong = {}
        for key, value in argument.items():
            param = self.params.get(key)
            if param is not None and param.checker is not None and not param.checker(value):
                wrong[key] = param.type_name
        if missing or unexpected or wrong:
            raise _invalid(missing=missing, unexpected=unexpected, wrong_type=wrong)
        return argument

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
        if first.checker is not None and not first.checker(argument):
            raise _invalid(wrong_type={first.name: first.type_name})
        return argument


def _resolvable_hints(func: Callable[..., Any]) -> dict[str, Any]:
    """The annotations that can be resolved, one by one; the others stay unchecked."""
    hints = {}
    namespace = getattr(inspect.unwrap(func), "__globals__", {})
    for name, annotation in getattr(func, "__annotations__", {}).items():
        holder = types.SimpleNamespace(__annotations__={name: annotation})
        try:
            hints.update(typing.get_type_hints(holder, globalns=namespace))
        except Exception:
            continue
    return hints


def _invalid(
    missing: list[str] | None = None,
    unexpected: list[str] | None = None,
    wrong_type: dict[str, str] | None = None,
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
    return InvalidArguments("; ".join(parts), details)
