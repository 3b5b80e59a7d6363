"""Example commands, found by autodiscovery (every installed app's ``commands`` module)."""

import time
from typing import Annotated, TypedDict

import msgspec
from django.conf import settings

from wscommands import (
    PRESENCE_GROUP,
    ClientError,
    command,
    declare_push,
    on_connect,
    on_disconnect,
    run_sync,
)

from . import presence_commands  # noqa: F401  (the demo's presence.list: registered on import)
from .models import add_to_counter, counter_value


class Echo(TypedDict):
    text: str


class WhoAmI(TypedDict):
    connection_id: str
    authenticated: bool
    id: int | None
    username: str | None


class Report(TypedDict):
    year: int
    calls: int


@declare_push("counter")
class Counter(TypedDict):
    """The shared counter's new value, sent to everyone."""

    value: int


@declare_push("reminder")
class Reminder(TypedDict):
    """A reminder asked for with ``remind``, sent to that connection only."""

    text: str


@declare_push("chat_left")
class ChatLeft(TypedDict):
    """A connection that was in a room went away (to the room's other members)."""

    room: str
    connection_id: str


@command
async def echo(connection, text: str) -> Echo:
    """Send the text back: ``{"echo": {"text": "hi"}}`` -> ``{"echo": {"text": "hi"}}``."""
    return {"text": text}


class Text(msgspec.Struct):
    """A piece of text: a msgspec Struct, validated and handed to the command as an object."""

    text: str


@command(name="echo.typed")
async def echo_typed(connection, message: Text) -> Text:
    """echo with a Struct argument: ``{"echo.typed": {"message": {"text": "hi"}}}``."""
    return message


@command
async def whoami(connection) -> WhoAmI:
    """Who this connection acts as, and its id."""
    user = connection.user
    return {
        "connection_id": connection.id,
        "authenticated": connection.is_authenticated(),
        "id": user.pk if connection.is_authenticated() else None,
        "username": user.get_username() if connection.is_authenticated() else None,
    }


@command(login_required=True)
def add(connection, a: int, b: int) -> int:
    """A sync command (runs in a worker thread), for logged-in users only."""
    return a + b


@command
def div(connection, a: float, b: float) -> float:
    """Division; dividing by zero is the client's mistake, so it says so."""
    if b == 0:
        raise ClientError("division by zero")
    return a / b


@command
def square(connection, n: float) -> float:
    """A command taking one positional argument: ``{"square": 4}`` -> 16."""
    return n * n


@command
def sleep(connection, seconds: float = 1.0) -> float:
    """A slow sync command: it blocks a worker thread, never the event loop."""
    if not 0 <= seconds <= 10:
        raise ClientError("seconds must be between 0 and 10")
    time.sleep(seconds)
    return seconds


@command(concurrent=True)
async def report(connection, year: int) -> Report:
    """A concurrent command: later requests of this connection do not wait for it."""
    return {"year": year, "calls": connection.get_state("calls", 0)}


@command
async def count(connection) -> int:
    """Per-command connection state: how often this connection has called ``count``."""
    state = connection.get_connection_state()
    state["n"] = state.get("n", 0) + 1
    return state["n"]


#: The shared counter starts over at this value, so no one can push it to where numbers
#: stop working (2**63 - 1 in Redis, thousands of digits in memory).
COUNTER_LIMIT = 1_000_000_000


@command(name="counter.increment")
async def counter_increment(
    connection, amount: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1
) -> int:
    """A shared counter (1 to 100 a step, starting over at COUNTER_LIMIT); everyone is told
    the new value. It survives restarts: see :func:`counter_in_database`."""
    if counter_in_database():
        value = await run_sync(add_to_counter, amount, COUNTER_LIMIT)
    else:
        value = await connection.increment_global_state("counter", amount)
        if value - amount < COUNTER_LIMIT <= value:
            # Only the increment that crossed the limit subtracts it (atomically), so
            # concurrent increments never subtract twice.
            value = await connection.increment_global_state("counter", -COUNTER_LIMIT)
    await connection.broadcast({"counter": {"value": value}})
    return value


@command(name="counter.get")
async def counter_get(connection) -> int:
    """The shared counter's value."""
    if counter_in_database():
        return await run_sync(counter_value)
    return await connection.get_global_state("counter") or 0


def counter_in_database() -> bool:
    """Where the counter lives. Behind Redis: in the library's global state (shared by every
    process, kept by Redis across restarts). In the default in-memory mode, whose global
    state a restart loses, in the example's database (project/demo/models.py)."""
    return settings.WSCOMMANDS.get("BACKEND", "memory") == "memory"


#: Longest reminder text: a reminder is held in memory until it fires.
REMINDER_MAX_TEXT = 1000


@command
async def remind(connection, seconds: float, text: str) -> None:
    """Send ``{"reminder": {"text": ...}}`` to this connection after ``seconds``.

    Bounded: at most an hour, 1,000 characters, and the library's ``MAX_TIMERS`` /
    ``MAX_TIMER_BYTES`` per connection (past those, ``rate_limited``).
    """
    if not 0 <= seconds <= 3600:
        raise ClientError("seconds must be between 0 and 3600")
    if len(text) > REMINDER_MAX_TEXT:
        raise ClientError(f"text must be at most {REMINDER_MAX_TEXT} characters")
    connection.call_later(seconds, connection.send, {"reminder": {"text": text}})


@on_connect
async def hello(connection):
    connection.set_state("calls", 0)


@on_disconnect
async def bye(connection):
    # Chat rooms only: PRESENCE_GROUP holds every watcher, and telling each of them about
    # every disconnect costs O(watchers) per disconnect (presence diffs already say it).
    for group in sorted(connection.groups - {PRESENCE_GROUP}):
        await connection.send_to_group(
            group,
            {"chat_left": {"room": group, "connection_id": connection.id}},
            everyone_else=True,
        )
