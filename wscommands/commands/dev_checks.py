"""Development checks of what the server sends: results and declared pushes against their types.

On when ``WSCOMMANDS["VALIDATE_OUTGOING"]`` is true (by default: when ``settings.DEBUG`` is).
A mismatch is logged as a warning on the ``wscommands`` logger and the message is still sent:
these checks tell developers that the published schema lies, they never change behaviour. The
value is checked in its JSON form, as the client will read it.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from django.conf import settings

from .._internal.runtime import RUNTIME, Part
from ..conf import wscommands_settings
from ..wire.jsoncodec import encode
from . import pydantic_models as models
from .registry import Command, Registry, registry

logger = logging.getLogger("wscommands.command")


def _checking() -> bool:
    value = wscommands_settings.VALIDATE_OUTGOING
    return bool(settings.DEBUG if value is None else value)


#: Worked out once per settings: this is asked for every result.
CHECKING: Part[bool] = Part("outgoing checks", _checking, per_loop=False, from_settings=True)


def enabled() -> bool:
    """Whether outgoing messages are checked (``VALIDATE_OUTGOING``, else ``DEBUG``)."""
    return RUNTIME.get(CHECKING)


def check_result(cmd: Command, result: Any) -> None:
    """Log a warning if a command's result does not fit its return annotation."""
    if result is None or cmd.signature is None or not enabled():
        return
    problem = _mismatch(result, cmd.signature.result)
    if problem:
        logger.warning(
            "result of command %r does not match its return annotation: %s", cmd.name, problem
        )


def check_push(message: Any, pushes_of: Registry) -> None:
    """Log a warning for each declared push in ``message`` whose value does not fit its type."""
    if not pushes_of.pushes or not isinstance(message, dict) or not enabled():
        return
    for event, value in message.items():
        push = pushes_of.pushes.get(event)
        if push is None:
            continue
        problem = _mismatch(value, push.annotation)
        if problem:
            logger.warning("push %r does not match its declaration: %s", event, problem)


def encode_push(message: dict[str, Any], pushes_of: Registry = registry) -> str:
    """Encode a message the server pushes, checked first (when enabled) against the pushes
    declared in ``pushes_of``: a connection's consumer's registry, or the default one."""
    check_push(message, pushes_of)
    return encode(message)


def _mismatch(value: Any, annotation: Any) -> str | None:
    try:
        if models.is_model_annotation(annotation):
            models.validate_json(annotation, encode(value))
        else:
            msgspec.json.decode(encode(value), type=annotation)
    except (TypeError, ValueError) as exc:  # ValidationErrors (both are ValueErrors), not JSON
        return str(exc)
    return None
