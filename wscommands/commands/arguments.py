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
was expected). The fast path only converts; when something fails, :mod:`.refusals` works out
every problem. See docs/api.md.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

import msgspec
from django.core.exceptions import ImproperlyConfigured

from ..wire.exceptions import InvalidArguments
from . import pydantic_models as models
from .argument_errors import Details, invalid_arguments, type_name


def check_annotation(annotation: Any, what: str) -> None:
    """Raise ImproperlyConfigured if msgspec cannot validate and describe ``annotation``.

    ``what`` says where it was written ("parameter 'a' of app.commands.add (file:line)").
    A pydantic model (where pydantic is installed) is checked by pydantic instead.
    """
    try:
        if models.is_model_annotation(annotation):
            models.schema(annotation, "#/$defs/", "validation")
        else:
            msgspec.json.Decoder(annotation)
            msgspec.json.schema(annotation)
    except Exception as exc:  # msgspec's TypeError, pydantic's schema errors
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


#: Annotations whose JSON value is already what the function gets when its type is exact.
_AS_IS = (str, int, bool, float)


class Param:
    """One parameter after the connection: its name, annotation and whether it is required."""

    __slots__ = ("annotation", "as_is", "checked", "name", "pydantic", "required")

    def __init__(self, name: str, annotation: Any, required: bool):
        self.name = name
        self.annotation = annotation
        self.required = required
        self.checked = annotation is not Any
        self.as_is = annotation if annotation in _AS_IS else None
        self.pydantic = models.is_model_annotation(annotation)

    def convert(self, value: Any) -> Any:
        """The value as the function gets it; raises msgspec's or pydantic's ValidationError."""
        if type(value) is self.as_is:  # the common case, without a call into msgspec
            return value
        if self.pydantic:
            return models.validate(self.annotation, value)
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
        hints = resolve_hints(func, [p.name for p in params] + ["return"], where)
        #: ``**kwargs`` and ``*args`` (their annotation checks each value), or None.
        self.var_keyword: Param | None = None
        self.var_positional: Param | None = None
        named = []
        for p in params:
            if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                check_annotation(hints[p.name], f"parameter {p.name!r} of {where}")
                var = Param(p.name, hints[p.name], False)
                if p.kind is p.VAR_KEYWORD:
                    self.var_keyword = var
                else:
                    self.var_positional = var
            else:
                named.append(p)
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
                raise invalid_arguments(missing=missing)
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
                    extra = self.var_keyword
                    if extra is None or key == self.connection_name:
                        raise _Mismatch
                    kwargs[key] = extra.convert(value) if extra.checked else value
                else:
                    matched += 1
                    kwargs[key] = param.convert(value) if param.checked else value
            if matched < len(params) and any(
                p.required and p.name not in argument for p in params.values()
            ):
                raise _Mismatch
        except (_Mismatch, msgspec.ValidationError, models.ValidationError):
            raise self._explain(argument) from None
        return kwargs

    def _explain(self, argument: dict[str, Any]) -> InvalidArguments:
        """Every problem of a refused argument object, for ``details`` (the slow path)."""
        found = Details()
        found.missing += [
            p.name for p in self.params.values() if p.required and p.name not in argument
        ]
        for key, value in argument.items():
            param = self.params.get(key)
            if param is None:
                extra = self.var_keyword
                if extra is None or key == self.connection_name:
                    found.unexpected.append(key)
                elif extra.checked:  # **kwargs: each value, named by its key
                    _record(found, Param(key, extra.annotation, False), value)
            elif param.checked:
                _record(found, param, value)
        return found.error()

    def _bind_positional(self, argument: Any) -> Any:
        if not self.positional:
            if self.var_positional is not None:
                return self._convert_alone(self.var_positional, argument)
            raise InvalidArguments(
                "this command takes no positional argument: send an object of named arguments"
            )
        first = self.positional[0]
        others = [p.name for p in self.positional[1:] if p.required]
        if others:
            raise invalid_arguments(missing=others)
        return self._convert_alone(first, argument)

    def _convert_alone(self, param: Param, argument: Any) -> Any:
        try:
            return param.convert(argument)
        except (msgspec.ValidationError, models.ValidationError):
            found = Details()
            _record(found, param, argument)
            raise found.error() from None


class _Mismatch(Exception):
    """Internal: the fast path found a problem; the slow path works out which."""


def _record(found: Details, param: Param, value: Any) -> None:
    """Add to ``found`` what msgspec or pydantic finds wrong in ``value`` (nothing if it fits)."""
    try:
        param.convert(value)
    except msgspec.ValidationError as exc:
        found.add_msgspec(param.name, param.annotation, value, str(exc))
    except models.ValidationError as exc:
        for location, kind, message in models.problems(exc):
            found.add_pydantic(param.name, param.annotation, location, kind, message)
