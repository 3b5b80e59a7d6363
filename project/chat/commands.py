"""Chat rooms on groups, with messages stored through the ORM."""

from typing import TypedDict

from wscommands import ClientError, authorize_join, command, declare_push, run_sync

from .models import Message

MAX_TEXT = 2000

# "from" is a Python keyword: these two are declared with the functional syntax.
Line = TypedDict("Line", {"from": str, "text": str})
Line.__doc__ = "A message of a room's history."
ChatMessage = TypedDict("ChatMessage", {"room": str, "from": str, "text": str})
ChatMessage.__doc__ = "A message said in a room you joined."
declare_push("chat_message", ChatMessage)


class Joined(TypedDict):
    room: str
    history: list[Line]


class Left(TypedDict):
    room: str


def _room(room):
    if not isinstance(room, str) or not room or len(room) > 80:
        raise ClientError("room must be a name of 1 to 80 characters")
    return room


@authorize_join
def may_join_room(connection, group):
    """Anyone may be in a room (saying something needs a permission). A resuming client's
    rooms come back through this hook too; without one, a resume restores no group."""
    return 0 < len(group) <= 80


@command(name="chat.join")
async def join(connection, room: str) -> Joined:
    """Join a room: you receive its ``chat_message`` pushes from now on."""
    try:
        await connection.join(_room(room))
    except ValueError as exc:
        raise ClientError(str(exc)) from None
    return {"room": room, "history": await run_sync(_history, room)}


@command(name="chat.leave")
async def leave(connection, room: str) -> Left:
    """Leave a room."""
    await connection.leave(room)
    return {"room": room}


@command(name="chat.say", permission="chat.add_message")
async def say(connection, room: str, text: str) -> None:
    """Say something in a room (needs the chat.add_message permission)."""
    if not text:
        raise ClientError("empty message")
    if len(text) > MAX_TEXT:
        raise ClientError(f"message longer than {MAX_TEXT} characters")
    if room not in connection.groups:
        raise ClientError(f"join {room!r} first")
    await run_sync(Message.objects.create, room=room, author=connection.user, text=text)
    message = {"room": room, "from": connection.user.get_username(), "text": text}
    await connection.send_to_group(room, {"chat_message": message})


def _history(room: str, limit: int = 20) -> list[Line]:
    rows = Message.objects.filter(room=room).select_related("author").order_by("-id")[:limit]
    return [{"from": m.author.get_username(), "text": m.text} for m in reversed(rows)]
