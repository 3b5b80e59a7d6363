"""The demo's "who is online" command, on wscommands' presence.

With ``WSCOMMANDS["PRESENCE_EVENTS"]`` on, a group's members receive
``{"presence": {"event": "join" | "leave", "group": <name>, ...}}`` when someone joins or
leaves it, and the members of ``wscommands.PRESENCE_GROUP`` receive the same with
``"group": null`` when a connection comes or goes. ``presence.list`` without a group also
subscribes the caller to those server-wide events: the page asks for the full list once per
(re)connect and applies events after.
"""

from typing import Literal, TypedDict

from wscommands import PRESENCE_GROUP, ClientError, command, declare_push


class Present(TypedDict):
    """One live connection."""

    connection_id: str
    user_id: int | None
    username: str | None
    connected_since: float


@declare_push("presence")
class PresenceEvent(TypedDict):
    """Someone joined or left a group (``group``), or connected or went away (``group`` null)."""

    event: Literal["join", "leave"]
    group: str | None
    connection_id: str
    user_id: int | None
    username: str | None


@command(name="presence.list")
async def presence_list(connection, group: str | None = None) -> list[Present]:
    """The live connections of every process (or of ``group``): id, user id, username, since.

    Without a group, the caller also receives the server-wide presence events from now on.
    """
    if group is None:
        await connection.join(PRESENCE_GROUP)
    try:
        return await connection.get_presence(group)
    except ValueError as exc:  # an invalid group name
        raise ClientError(str(exc)) from None
