"""The demo's "who is online" command, on wscommands' presence.

Live updates need no command: with ``WSCOMMANDS["PRESENCE_EVENTS"]`` on, every connection
receives ``{"presence": {"event": "join" | "leave", "group": None, ...}}`` when a connection
comes or goes, and a group's members the same with ``"group": <name>`` when someone joins or
leaves it. The page asks for the full list once per (re)connect and applies events after.
"""

from wscommands import ClientError, command


@command(name="presence.list")
async def presence_list(connection, group: str | None = None):
    """The live connections of every process (or of ``group``): id, user id, username, since."""
    try:
        return await connection.get_presence(group)
    except ValueError as exc:  # an invalid group name
        raise ClientError(str(exc)) from None
