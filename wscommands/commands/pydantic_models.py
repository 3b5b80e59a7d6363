"""pydantic models as annotations, where pydantic is installed (it is optional).

An annotation that contains a ``pydantic.BaseModel`` (``Order``, ``list[Order]``,
``Order | None``) is validated and described by pydantic's ``TypeAdapter``, with the model's
own configuration (its strictness, aliases, extra fields); every other annotation goes to
msgspec. Without pydantic installed nothing here is ever used.
"""

from __future__ import annotations

import functools
import typing
from typing import Any

try:
    import pydantic
except ImportError:  # optional: without it, no annotation is a pydantic model
    pydantic = None  # type: ignore[assignment]


class _NeverRaised(Exception):
    """Stands for pydantic's ValidationError when pydantic is not installed."""


#: pydantic's validation error (an exception nothing raises without pydantic).
ValidationError: type[Exception] = pydantic.ValidationError if pydantic else _NeverRaised

#: pydantic error types that mean "the right type, but a constraint fails".
CONSTRAINTS = frozenset(
    {
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "multiple_of",
        "finite_number",
        "string_too_short",
        "string_too_long",
        "string_pattern_mismatch",
        "too_short",
        "too_long",
        "value_error",
        "assertion_error",
    }
)


def is_model_annotation(annotation: Any) -> bool:
    """Whether ``annotation`` is, or contains, a pydantic model (False without pydantic)."""
    if pydantic is None:
        return False
    return _is_model(annotation) or any(is_model_annotation(a) for a in typing.get_args(annotation))


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel)


@functools.cache
def adapter(annotation: Any) -> Any:
    """pydantic's TypeAdapter for ``annotation``, built once."""
    return pydantic.TypeAdapter(annotation)


def validate(annotation: Any, value: Any) -> Any:
    """The value as the function gets it; raises :data:`ValidationError`."""
    return adapter(annotation).validate_python(value)


def validate_json(annotation: Any, text: str) -> None:
    """Check a JSON text against ``annotation``; raises :data:`ValidationError`."""
    adapter(annotation).validate_json(text)


def problems(error: Exception) -> list[tuple[tuple[Any, ...], str, str]]:
    """``(location, pydantic error type, message)`` for each problem of a ValidationError."""
    return [(tuple(e["loc"]), e["type"], e["msg"]) for e in error.errors()]  # type: ignore[attr-defined]


def schema(annotation: Any, ref_prefix: str, mode: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(JSON Schema, shared definitions)``; ``mode``: "validation" or "serialization"."""
    document = adapter(annotation).json_schema(ref_template=ref_prefix + "{model}", mode=mode)
    defs = document.pop("$defs", {})
    if _is_model(annotation) and "$ref" not in document:
        # pydantic writes the model itself inline: shared, like the models inside it
        name = document.get("title", annotation.__name__)
        defs[name] = document
        document = {"$ref": ref_prefix + name}
    return document, defs


def field_annotation(annotation: Any, name: str) -> Any:
    """The annotation of a model's field (by name or alias); Any when it has none."""
    if pydantic is not None and _is_model(annotation):
        for field_name, field in annotation.model_fields.items():
            if name in (field_name, field.alias):
                return field.annotation
    return Any
