"""The API document (:mod:`.schema`) as AsyncAPI 3.0.

One channel, the WebSocket (``/ws/``). Each command is an operation with ``action: receive``
(AsyncAPI speaks from the server's side: the server receives the request) whose ``reply`` is
the reply message; each declared push is an operation with ``action: send``. Messages are the
protocol's JSON objects: ``{"add": {"a": 1, "b": 2}, "request_id": 7}`` and
``{"add": 3, "request_id": 7}``. Shared schemas go to ``components.schemas``.
"""

from __future__ import annotations

import re
from typing import Any

from .document import rewrite_refs

COMPONENTS = "#/components/schemas/"
_KEY = re.compile(r"[^A-Za-z0-9_.\-]")
_REQUEST_ID = {
    "description": "Copied into the reply, to match it to its request.",
    "type": ["string", "integer"],
}
_ERROR = {
    "type": "object",
    "properties": {
        "code": {"type": "string"},
        "message": {"type": "string"},
        "details": {"type": "object"},
    },
    "required": ["code", "message"],
}


def asyncapi(
    document: dict[str, Any], title: str, version: str, address: str = "/ws/"
) -> dict[str, Any]:
    """An AsyncAPI 3.0.0 document (a JSON-able dict) for the commands and pushes."""
    channel_ref = {"$ref": "#/channels/ws"}
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    keys: set[str] = set()
    for name, spec in document["commands"].items():
        key = _unique(_KEY.sub("_", name), keys)
        messages[f"{key}.request"] = {
            "name": name,
            "title": f"{name} request",
            "summary": _summary(spec["description"]),
            "payload": _envelope(name, spec["params"], required=True),
        }
        messages[f"{key}.reply"] = {
            "name": f"{name} reply",
            "title": f"{name} reply",
            "payload": _reply(name, spec["result"]),
        }
        operation = {
            "action": "receive",
            "channel": channel_ref,
            "title": name,
            "summary": _summary(spec["description"]),
            "messages": [{"$ref": f"#/channels/ws/messages/{key}.request"}],
            "reply": {
                "channel": channel_ref,
                "messages": [{"$ref": f"#/channels/ws/messages/{key}.reply"}],
            },
        }
        if spec["description"]:
            operation["description"] = spec["description"]
        if spec["login_required"]:
            operation["x-wscommands-login-required"] = True
        if spec["permission"]:
            operation["x-wscommands-permission"] = spec["permission"]
        operations[key] = _without_empty(operation)
    for event, spec in document["pushes"].items():
        key = _unique("push." + _KEY.sub("_", event), keys)
        messages[key] = _without_empty(
            {
                "name": event,
                "title": event,
                "summary": _summary(spec["description"]),
                "payload": _envelope(event, spec["payload"], required=True),
            }
        )
        operations[key] = _without_empty(
            {
                "action": "send",
                "channel": channel_ref,
                "title": event,
                "summary": _summary(spec["description"]),
                "messages": [{"$ref": f"#/channels/ws/messages/{key}"}],
            }
        )
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": title,
            "version": version,
            "description": (
                "JSON commands over one WebSocket (wscommands): send "
                '`{"<command>": <params>, "request_id": <id>}`, get '
                '`{"<command>": <result>, "request_id": <id>}` or an `errors` entry. '
                f"API hash: {document['hash']}."
            ),
        },
        "defaultContentType": "application/json",
        "channels": {
            "ws": {
                "address": address,
                "title": "The wscommands WebSocket",
                "messages": {key: _without_empty(message) for key, message in messages.items()},
            }
        },
        "operations": operations,
        "components": {"schemas": rewrite_refs(document["$defs"], COMPONENTS)},
    }


def _envelope(key: str, schema: Any, required: bool) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {key: rewrite_refs(schema, COMPONENTS), "request_id": _REQUEST_ID},
        "required": [key] if required else [],
    }


def _reply(key: str, result: Any) -> dict[str, Any]:
    payload = _envelope(key, result, required=False)
    payload["properties"]["errors"] = {
        "type": "object",
        "description": "The command's error, when it failed (absent: it succeeded).",
        "properties": {key: _ERROR},
    }
    return payload


def _summary(description: str) -> str:
    return description.strip().split("\n\n")[0].replace("\n", " ")


def _unique(key: str, taken: set[str]) -> str:
    while key in taken:
        key += "_"
    taken.add(key)
    return key


def _without_empty(mapping: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v not in ("", None)}
