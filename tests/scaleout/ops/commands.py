"""Commands that expose every messaging, state and presence operation to the scale-out tests.

``via="module"`` uses the module-level functions (as a view or task would) instead of the
connection's methods.
"""

from django.contrib.auth import get_user_model

import wscommands
from wscommands import command, run_sync


def _users(ids):
    return list(get_user_model().objects.filter(pk__in=ids))


@command(name="op.broadcast")
async def broadcast(connection, message: dict, everyone_else: bool = False, via: str = "conn"):
    if via == "module":
        await wscommands.broadcast(message)
    else:
        await connection.broadcast(message, everyone_else=everyone_else)


@command(name="op.subset")
async def subset(
    connection,
    message: dict,
    ids: list | None = None,
    users: list | None = None,
    itself: bool = False,
    via: str = "conn",
):
    recipients = list(ids or []) + await run_sync(_users, users or [])
    if itself:  # a Connection object as a recipient
        recipients.append(connection)
    send = wscommands.send_to_subset if via == "module" else connection.send_to_subset
    await send(recipients, message)


@wscommands.authorize_join
def members_only(connection, group):
    """Groups named ``members-...`` are for logged-in users (resume tests re-check it)."""
    return not group.startswith("members-") or connection.is_authenticated()


@command(name="op.join")
async def join(connection, group: str):
    await connection.join(group)


@command(name="op.leave")
async def leave(connection, group: str):
    await connection.leave(group)


@command(name="op.group")
async def group(
    connection, group: str, message: dict, everyone_else: bool = False, via: str = "conn"
):
    if via == "module":
        await wscommands.send_to_group(group, message)
    else:
        await connection.send_to_group(group, message, everyone_else=everyone_else)


@command(name="op.get")
async def get(connection, key: str | None = None, via: str = "conn"):
    if via == "module":
        return await wscommands.get_global_state(key)
    return await connection.get_global_state(key)


@command(name="op.update")
async def update(connection, mapping: dict, via: str = "conn"):
    if via == "module":
        await wscommands.update_global_state(mapping)
    else:
        await connection.update_global_state(mapping)


@command(name="op.increment", concurrent=True)
async def increment(connection, key: str, amount: int | float = 1, via: str = "conn"):
    if via == "module":
        return await wscommands.increment_global_state(key, amount)
    return await connection.increment_global_state(key, amount)


@command(name="op.presence")
async def presence(connection, group: str | None = None, via: str = "conn"):
    if via == "module":
        return await wscommands.get_presence(group)
    return await connection.get_presence(group)


@command(name="op.presence_state")
async def presence_state(connection, group: str | None = None, limit: int | None = None):
    return await connection.get_presence_state(group, limit=limit)
