"""Commands that let the reliability suite look inside a live server process."""

from __future__ import annotations

import os
import time

from django.db import connection as db

from wscommands import command, get_presence


@command(name="probe.flood")
async def flood(connection, count: int, size: int):
    """Push ``count`` messages of ``size`` characters to this connection (a slow reader test)."""
    text = "x" * size
    for _ in range(count):
        await connection.send({"flood": text})
    return count


@command(name="probe.db")
def hold_db(connection, seconds: float):
    """Hold a database connection (a query, then a sleep) in a worker thread."""
    with db.cursor() as cursor:
        cursor.execute("SELECT 1")
    time.sleep(seconds)
    return True


@command(name="probe.hold")
def hold(connection, seconds: float):
    """Hold a worker thread for ``seconds``, once the push ``holding`` has been sent."""
    connection.call_later(0, connection.send, {"holding": seconds})
    time.sleep(seconds)


@command(name="probe.join")
async def join(connection, group: str):
    """Join a group."""
    await connection.join(group)


@command(name="probe.presence")
async def presence(connection, group: str | None = None):
    """Connection ids present across the cluster (or in ``group``)."""
    return [entry["connection_id"] for entry in await get_presence(group)]


@command(name="probe.pid")
async def pid(connection):
    """This server process's id (its memory is read from /proc)."""
    return os.getpid()


@command(name="probe.broadcast")
async def broadcast(connection, message: dict):
    """Broadcast ``message`` to every connection of the cluster."""
    await connection.broadcast(message)


@command(name="probe.group")
async def group(connection, group: str, message: dict):
    """Send ``message`` to the members of ``group``."""
    await connection.send_to_group(group, message)


@command(name="probe.nan")
async def nan(connection):
    """A result with a NaN and an infinity inside it (JSON has neither)."""
    return {"values": [1.0, float("nan")], "limit": float("inf")}


@command(name="probe.null")
async def null(connection):
    """A result that is ``null`` for real."""
    return None


@command(name="probe.set_global")
async def set_global(connection, key: str, value: int):
    """Set a global-state value (e.g. the shared counter just under its limit)."""
    await connection.update_global_state({key: value})


@command(name="probe.bug")
async def bug(connection):
    """A command with a bug: raises an exception nobody expected."""
    raise RuntimeError("probe bug")


@command(name="probe.to_me")
async def to_me(connection, message: dict):
    """Send ``message`` to this connection's user (every connection of theirs, any process)."""
    await connection.send_to_subset([connection.user], message)
