"""The demo's "who is online" command, on wscommands' presence.

With ``WSCOMMANDS["PRESENCE_EVENTS"]`` on, a group's members receive
``{"presence_diff": {"group": <name>, "joins", "leaves", "guests"}}`` as people join or leave
it, and the members of ``wscommands.PRESENCE_GROUP`` receive the same with ``"group": null``
as connections come and go. ``presence.list`` returns the state those diffs apply to (what
the browser client's ``Presence`` helper asks for on every (re)connect); without a group it
also subscribes the caller to the server-wide diffs.
"""

from typing import TypedDict

from wscommands import PRESENCE_GROUP, ClientError, command, declare_push


class PresentUser(TypedDict):
    """A signed-in user and their connection ids."""

    user_id: int
    username: str | None
    connections: list[str]


class PresenceCount(TypedDict):
    """Exact counts, whatever the limit on the users listed."""

    connections: int
    users: int
    guests: int


class PresenceState(TypedDict):
    """Who is present: signed-in users by user id, anonymous connections per process."""

    group: str | None
    users: dict[str, PresentUser]
    guests: dict[str, int]
    count: PresenceCount
    truncated: bool


@declare_push("presence_diff")
class PresenceDiff(TypedDict):
    """Who joined and left a group (``group``), or the server (``group`` null), lately."""

    group: str | None
    joins: dict[str, PresentUser]
    leaves: dict[str, PresentUser]
    guests: dict[str, int]


@command(name="presence.list")
async def presence_list(connection, group: str | None = None) -> PresenceState:
    """Who is online (or in ``group``): signed-in users with their connections, guests counted.

    Without a group, the caller also receives the server-wide presence diffs from now on.
    """
    if group is None:
        await connection.join(PRESENCE_GROUP)
    try:
        return await connection.get_presence_state(group)
    except ValueError as exc:  # an invalid group name
        raise ClientError(str(exc)) from None
