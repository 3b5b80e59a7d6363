"""Errors and the wire codes they map to (:class:`.codes.ErrorCode`), in one place.

CommandError                  base: code, message, details -> one ``errors`` entry
├── ClientError               client_error: raised by commands, message shown as is
├── UnknownCommand            unknown_command
├── InvalidArguments          invalid_arguments (details: missing, unexpected, wrong_type)
├── NotAuthenticated          not_authenticated
├── PermissionDenied          permission_denied
├── RateLimited               rate_limited (details.retry_after)
├── Unavailable               unavailable: a backend (Redis) cannot be reached
└── CommandFailed             command_failed: any other exception, message hides internals
ProtocolError                 a whole frame is refused: errors.request
├── InvalidJSON               invalid_json
└── InvalidRequest            invalid_request
BackendUnavailable            raised by backends (Redis down); a command that lets it through
                              answers ``unavailable`` (see :func:`error_entry`)
"""

from __future__ import annotations

from typing import Any

from ..observability import logs
from .codes import ErrorCode


def wire_entry(code: str, message: str, details: dict[str, Any] | None) -> dict[str, Any]:
    """An ``errors`` entry: ``{"code", "message"[, "details"]}`` (details only when given)."""
    entry: dict[str, Any] = {"code": code, "message": message}
    if details:
        entry["details"] = details
    return entry


class CommandError(Exception):
    """An error that becomes one entry of a reply's ``errors`` object."""

    code = ErrorCode.COMMAND_FAILED
    default_message = "the command failed"

    def __init__(self, message: str | None = None, details: dict[str, Any] | None = None):
        self.message = message if message is not None else self.default_message
        self.details = details
        super().__init__(self.message)

    def as_entry(self) -> dict[str, Any]:
        """The wire form: ``{"code", "message"[, "details"]}``."""
        return wire_entry(self.code, self.message, self.details)


class ClientError(CommandError):
    """Raise from a command to send the client a ``client_error`` with this message."""

    code = ErrorCode.CLIENT_ERROR


class UnknownCommand(CommandError):
    """No command is registered under the requested name."""

    code = ErrorCode.UNKNOWN_COMMAND


class InvalidArguments(CommandError):
    """The arguments do not fit the command's signature or annotations."""

    code = ErrorCode.INVALID_ARGUMENTS


class NotAuthenticated(CommandError):
    """An anonymous user called a command that needs a login or a permission."""

    code = ErrorCode.NOT_AUTHENTICATED
    default_message = "authentication required"


class PermissionDenied(CommandError):
    """A logged-in user lacks the permission a command needs."""

    code = ErrorCode.PERMISSION_DENIED
    default_message = "permission denied"


class RateLimited(CommandError):
    """The connection sends faster, or holds more, than it may.

    ``details``: ``retry_after`` (seconds) for the frame rate; ``limit`` (the setting's name)
    and ``max`` (its value) for a resource bound (timers, groups, waiting requests, memory).
    """

    code = ErrorCode.RATE_LIMITED
    default_message = "too many requests: slow down"


class Unavailable(CommandError):
    """A backend the command needs (such as Redis) cannot be reached right now."""

    code = ErrorCode.UNAVAILABLE
    default_message = "a backend is unavailable: retry later"


class CommandFailed(CommandError):
    """Any unexpected exception; the message reveals nothing internal."""

    code = ErrorCode.COMMAND_FAILED
    default_message = "internal error"


class BackendUnavailable(Exception):
    """The global-state or presence backend (e.g. Redis) cannot be reached right now.

    Raised by ``get_presence`` and the global-state functions; a command that does not
    catch it answers ``unavailable``.
    """


class ProtocolError(Exception):
    """A frame that cannot be handled as a request at all (``errors.request``)."""

    code = ErrorCode.INVALID_REQUEST

    def __init__(
        self,
        message: str,
        request_id: str | int | None = None,
        details: dict[str, Any] | None = None,
    ):
        self.message = message
        self.request_id = request_id
        self.details = details
        super().__init__(message)

    def as_entry(self) -> dict[str, Any]:
        """The wire form of the ``errors.request`` entry."""
        return wire_entry(self.code, self.message, self.details)


class InvalidJSON(ProtocolError):
    """The frame is not valid JSON."""

    code = ErrorCode.INVALID_JSON


class InvalidRequest(ProtocolError):
    """The frame is JSON but not a valid request object."""

    code = ErrorCode.INVALID_REQUEST


def error_entry(exc: BaseException, command: str = "") -> dict[str, Any]:
    """Map any exception raised by a command to its ``errors`` entry.

    Known errors keep their code and message; anything else is logged with its traceback
    (at most once per connection, command and exception type per ``logs.INTERVAL``) and
    becomes ``command_failed`` so nothing internal reaches the client.
    """
    if isinstance(exc, CommandError):
        return exc.as_entry()
    if isinstance(exc, BackendUnavailable):
        return Unavailable().as_entry()
    logs.unexpected(f"command:{command}", "command %r raised", command, exc=exc)
    return CommandFailed().as_entry()
