"""The published API: each command's parameter and result schemas, and the declared pushes.

One JSON document, built from the registry by msgspec (``msgspec.json.schema_components``)
and cached until a command or push is registered: ``describe`` returns (a caller's part of)
it, and ``manage.py wscommands_schema`` turns it into AsyncAPI 3.0 and TypeScript. Its hash
names the API's version, so a client can tell it talks to a server with other commands::

    {"commands": {"add": {"params": {...}, "result": {...}, "login_required": true,
                          "permission": null, "description": "..."}},
     "pushes": {"counter": {"payload": {...}, "description": "..."}},
     "$defs": {"Item": {...}},
     "hash": "sha256:..."}
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Iterable
from typing import Any

import msgspec

from .._internal.runtime import RUNTIME, Part
from ..commands import pydantic_models as models
from ..commands.registry import Command, Registry
from ..wire.jsoncodec import encode

#: Where the shared schemas (Structs, TypedDicts, Enums...) live in the document.
REF_PREFIX = "#/$defs/"
_ANY: dict[str, Any] = {}
#: id(registry) -> (its version, its document).
DOCUMENTS: Part[dict[int, tuple[int, dict[str, Any]]]] = Part("API documents", dict, per_loop=False)


def api_document(registry: Registry) -> dict[str, Any]:
    """The whole API of ``registry`` (every command and push), with its ``hash``.

    Built once per change of the registry; treat the result as read-only.
    """
    cache = RUNTIME.get(DOCUMENTS)
    cached = cache.get(id(registry))
    if cached is not None and cached[0] == registry.version:
        return cached[1]
    document = _build(registry)
    cache[id(registry)] = (registry.version, document)
    return document


def schema_hash(document: dict[str, Any]) -> str:
    """``sha256:<hex>`` of the document's canonical JSON (without its own ``hash``)."""
    body = {key: value for key, value in document.items() if key != "hash"}
    canonical = msgspec.json.encode(body, order="sorted")
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def subset(document: dict[str, Any], commands: Iterable[str]) -> dict[str, Any]:
    """The document with only ``commands`` (and the shared schemas they and the pushes use).

    The ``hash`` stays the whole API's, so every caller sees the same version.
    """
    chosen = {name: document["commands"][name] for name in commands}
    parts = {"commands": chosen, "pushes": document["pushes"]}
    return {**parts, "$defs": _reachable(parts, document["$defs"]), "hash": document["hash"]}


def rewrite_refs(schema: Any, prefix: str) -> Any:
    """A copy of ``schema`` with every ``#/$defs/X`` reference turned into ``prefix + X``."""
    if isinstance(schema, dict):
        return {
            key: (
                prefix + value.removeprefix(REF_PREFIX)
                if key == "$ref" and isinstance(value, str)
                else rewrite_refs(value, prefix)
            )
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [rewrite_refs(item, prefix) for item in schema]
    return schema


def _build(registry: Registry) -> dict[str, Any]:
    commands = sorted(registry.commands.values(), key=lambda c: c.name)
    pushes = sorted(registry.pushes.values(), key=lambda p: p.event)
    types: list[tuple[Any, str]] = []  # (annotation, "validation" in / "serialization" out)
    for cmd in commands:
        if cmd.signature is not None:
            types += [(p.annotation, "validation") for p in cmd.signature.params.values()]
            if cmd.signature.var_keyword is not None:
                types.append((cmd.signature.var_keyword.annotation, "validation"))
            types.append((cmd.signature.result, "serialization"))
    types += [(push.annotation, "serialization") for push in pushes]
    schemas, defs = _schemas(types)
    found = iter(schemas)
    described: dict[str, Any] = {}
    for cmd in commands:
        described[cmd.name] = _command(cmd, found, defs)
    document = {
        "commands": described,
        "pushes": {
            push.event: {"payload": next(found), "description": push.description} for push in pushes
        },
        "$defs": dict(sorted(defs.items())),
    }
    # The document goes to clients as JSON: make it exactly what they will read.
    document = msgspec.json.decode(encode(document))
    document["hash"] = schema_hash(document)
    return document


def _schemas(types: list[tuple[Any, str]]) -> tuple[list[Any], dict[str, Any]]:
    """Each annotation's schema, in order, and the shared definitions: msgspec's, and
    pydantic's for annotations with pydantic models."""
    plain = [t for t, _ in types if not models.is_model_annotation(t)]
    schemas, defs = msgspec.json.schema_components(plain, ref_template=REF_PREFIX + "{name}")
    from_msgspec = iter(schemas)
    resolved = []
    for annotation, mode in types:
        if models.is_model_annotation(annotation):
            schema, more = models.schema(annotation, REF_PREFIX, mode)
            defs.update(more)
            resolved.append(schema)
        else:
            resolved.append(next(from_msgspec))
    return resolved, defs


def _command(cmd: Command, found: Any, defs: dict[str, Any]) -> dict[str, Any]:
    signature = cmd.signature
    params: dict[str, Any]
    if signature is None:  # seed style: the argument is whatever the function makes of it
        params, result = _ANY, _ANY
    else:
        properties = {name: next(found) for name in signature.params}
        extra = next(found) if signature.var_keyword is not None else False
        result = next(found)
        params = {"type": "object", "properties": properties}
        required = [p.name for p in signature.params.values() if p.required]
        if required:
            params["required"] = required
        if extra != {}:  # **kwargs: its values' schema; none: no other key
            params["additionalProperties"] = extra
        alternatives = [params]
        first = signature.positional[0] if signature.positional else None
        if signature.takes_positional and first is not None:
            positional = properties.get(first.name)
            if positional is not None and not _may_be_object(positional, defs):
                _add_alternative(alternatives, positional)
        if not required:  # {} and null call it with no arguments
            _add_alternative(alternatives, {"type": "null"})
        if len(alternatives) > 1:
            params = {"anyOf": alternatives}
    return {
        "params": params,
        "result": result,
        "login_required": cmd.login_required,
        "permission": cmd.permission,
        "description": inspect.getdoc(cmd.func) or "",
    }


def _add_alternative(alternatives: list[Any], schema: dict[str, Any]) -> None:
    """Add ``schema`` to an ``anyOf`` list, flattening a plain ``anyOf`` and skipping repeats."""
    for option in schema["anyOf"] if list(schema) == ["anyOf"] else [schema]:
        if option not in alternatives:
            alternatives.append(option)


def _may_be_object(schema: dict[str, Any], defs: dict[str, Any]) -> bool:
    """Whether a JSON object could fit ``schema`` (a positional argument never is one)."""
    if "$ref" in schema:
        return _may_be_object(defs[schema["$ref"].removeprefix(REF_PREFIX)], defs)
    if "anyOf" in schema:
        return any(_may_be_object(s, defs) for s in schema["anyOf"])
    if "enum" in schema or "const" in schema:
        return False
    kind = schema.get("type")
    return kind is None or kind == "object" or (isinstance(kind, list) and "object" in kind)


def _reachable(parts: Any, defs: dict[str, Any]) -> dict[str, Any]:
    """The shared schemas ``parts`` refers to, directly or through one another."""
    names: set[str] = set()
    stack = [parts]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(REF_PREFIX):
                name = ref.removeprefix(REF_PREFIX)
                if name not in names:
                    names.add(name)
                    stack.append(defs[name])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return {name: defs[name] for name in sorted(names)}
