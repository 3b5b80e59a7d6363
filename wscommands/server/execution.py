"""Running one request: access checks, argument binding, calling, collecting the reply."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .._internal.threads import call, run_sync
from ..commands.dev_checks import check_result
from ..commands.registry import SEED, Command, Registry
from ..connection.connection import current_command
from ..guards.authentication import AUTHENTICATE, authenticate
from ..observability import metrics, tracing
from ..wire.codes import CloseCode
from ..wire.exceptions import NotAuthenticated, PermissionDenied, UnknownCommand, error_entry
from ..wire.protocol import Request, finish_reply
from .describe import DESCRIBE, describe, is_on

if TYPE_CHECKING:
    from ..connection.connection import Connection

#: The command that receives frames that are not JSON.
DEFAULT = "default"
#: The metrics' error code of a failed ``authenticate`` (its reply is ``false``, not an error).
AUTH_FAILED = "authentication_failed"


async def check_access(connection: Connection, cmd: Command) -> None:
    """Raise NotAuthenticated or PermissionDenied if the user may not run ``cmd``."""
    if cmd.login_required and not connection.is_authenticated():
        raise NotAuthenticated(f"{cmd.name} requires a logged-in user")
    if cmd.permission:
        user = connection.user
        if user is None or not await run_sync(user.has_perm, cmd.permission):
            raise PermissionDenied(f"{cmd.name} requires the permission {cmd.permission}")


async def call_command(
    connection: Connection, cmd: Command, argument: Any, response: dict[str, Any]
) -> Any:
    """Check access, bind the argument and call the command; returns its result."""
    if cmd.login_required or cmd.permission:  # (no coroutine per call for open commands)
        await check_access(connection, cmd)
    token = current_command.set(cmd.name)
    try:
        if cmd.style == SEED:
            return await call(cmd.func, argument, response, connection)
        args, kwargs = cmd.signature.bind(argument)  # type: ignore[union-attr]
        if cmd.is_async:
            result = await cmd.func(connection, *args, **kwargs)
        else:
            result = await run_sync(cmd.func, connection, *args, **kwargs)
        check_result(cmd, result)
        return result
    finally:
        current_command.reset(token)


async def run_request(
    connection: Connection, request: Request, registry: Registry
) -> tuple[dict[str, Any] | None, int | None]:
    """Run a request's commands in order; returns ``(reply or None, close code or None)``.

    A failing command becomes an ``errors`` entry and never stops the others; only a failed
    ``authenticate`` stops the request and asks for close code 3000.
    """
    response: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    unimplemented: list[str] = []
    for name, argument in request.commands:
        if name == AUTHENTICATE:
            started = time.perf_counter()
            result, ok = await authenticate(connection, argument)
            metrics.command_done(name, time.perf_counter() - started, None if ok else AUTH_FAILED)
            response[name] = result
            if not ok:
                return (
                    finish_reply(response, errors, unimplemented, request),
                    CloseCode.AUTHENTICATION_FAILED,
                )
            continue
        if name == DESCRIBE and is_on():
            try:
                response[name] = await describe(connection, registry)
            except Exception as exc:
                errors[name] = error_entry(exc, name)
            continue
        cmd = registry.get(name)
        if cmd is None:
            metrics.command_unknown()
            errors[name] = UnknownCommand(f"unknown command: {name}").as_entry()
            unimplemented.append(name)
            continue
        started = time.perf_counter()
        try:
            if tracing.enabled():
                with tracing.command_span(name, connection.id):
                    result = await call_command(connection, cmd, argument, response)
            else:  # no tracer installed: no context manager to enter and leave
                result = await call_command(connection, cmd, argument, response)
        except Exception as exc:
            errors[name] = entry = error_entry(exc, name)
            metrics.command_done(name, time.perf_counter() - started, entry["code"])
        else:
            metrics.command_done(name, time.perf_counter() - started, None)
            if result is not None:
                response[name] = result
    return finish_reply(response, errors, unimplemented, request), None


async def run_default(connection: Connection, cmd: Command, text: str) -> dict[str, Any] | None:
    """Hand a frame that is not JSON to the ``default`` command; a dict it returns is sent."""
    token = current_command.set(cmd.name)
    try:
        await check_access(connection, cmd)
        result = await call(cmd.func, connection, text)
    except Exception as exc:
        return {"errors": {DEFAULT: error_entry(exc, DEFAULT)}}
    finally:
        current_command.reset(token)
    return result if isinstance(result, dict) else None
