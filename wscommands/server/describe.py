"""The built-in ``describe`` command: the commands the caller may run, their schemas, the pushes.

Off unless ``WSCOMMANDS["DESCRIBE"]`` says "staff" (logged-in staff users) or "public"
(everyone). Off, the name is an ordinary one: ``unknown_command``, or an app's own command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._internal.threads import run_sync
from ..commands.registry import Command, Registry
from ..conf import wscommands_settings
from ..schema.document import api_document, subset
from ..wire.exceptions import NotAuthenticated, PermissionDenied

if TYPE_CHECKING:
    from ..connection.connection import Connection

#: The built-in command's name.
DESCRIBE = "describe"
#: The values of ``WSCOMMANDS["DESCRIBE"]``.
LEVELS = ("off", "staff", "public")


def is_on() -> bool:
    """Whether the built-in ``describe`` answers (rather than the registry)."""
    return wscommands_settings.DESCRIBE != "off"


async def describe(connection: Connection, registry: Registry) -> dict[str, Any]:
    """The API as the caller may use it; raises NotAuthenticated / PermissionDenied."""
    if wscommands_settings.DESCRIBE == "staff":
        if not connection.is_authenticated():
            raise NotAuthenticated("describe requires a logged-in staff user")
        if not getattr(connection.user, "is_staff", False):
            raise PermissionDenied("describe requires a staff user")
    document = api_document(registry)
    allowed = [name for name, cmd in registry.commands.items() if await _may_run(connection, cmd)]
    return subset(document, sorted(allowed))


async def _may_run(connection: Connection, cmd: Command) -> bool:
    if cmd.login_required and not connection.is_authenticated():
        return False
    user = connection.user
    if not cmd.permission:
        return True
    return user is not None and await run_sync(user.has_perm, cmd.permission)
