"""The join authorization hook, in-process: connection.join applies it, a resume restores
groups only through it (and none without a hook)."""

from __future__ import annotations

from channels.routing import URLRouter
from django.urls import path

from wscommands import CommandConsumer, PermissionDenied, Registry
from wscommands.commands.registry import Command
from wscommands.testing import CommandClient

RESUME = "wscommands.resume"


def application(hooks: list) -> URLRouter:
    """A consumer with its own registry: a ``join`` and a ``shout`` command, ``hooks``."""
    own = Registry()

    async def join(connection, group: str):
        try:
            await connection.join(group)
        except PermissionDenied:
            return "refused"
        return "joined"

    async def shout(connection, group: str):
        await connection.send_to_group(group, {"shout": group})

    own.register(Command(name="join", func=join))
    own.register(Command(name="shout", func=shout))
    own.join_hooks.extend(hooks)

    class Own(CommandConsumer):
        registry = own

    return URLRouter([path("ws/", Own.as_asgi())])


async def streams_of(client: CommandClient, *names: str) -> dict:
    """The announced positions (wscommands.streams frames) until every name was seen."""
    seen: dict = {}
    while not all(n in seen for n in names):
        seen.update((await client.receive_push()).get("wscommands.streams", {}))
    return seen


async def resume(app, positions: dict) -> tuple[CommandClient, dict]:
    client = CommandClient(app, "/ws/?resume=1")
    await client.connect()
    await streams_of(client, "all")
    reply = await client.request({RESUME: {"streams": positions}})
    return client, reply[RESUME]


async def test_without_a_hook_join_works_and_a_resume_restores_no_group():
    app = application([])
    async with CommandClient(app, "/ws/?resume=1") as first:
        assert await first.call("join", group="room") == "joined"
        positions = await streams_of(first, "all", "group:room")
    client, result = await resume(app, positions)
    try:
        assert result["group:room"] == {"recovered": False, "reason": "forbidden"}
        assert result["all"]["recovered"] is True
        await client.call("shout", group="room")
        assert client.pushes == []  # not a member: its own shout does not reach it
    finally:
        await client.close()


async def test_the_hook_refuses_joins_and_decides_what_a_resume_restores():
    async def only_public(connection, group):
        return group.startswith("public")

    app = application([only_public])
    async with CommandClient(app, "/ws/?resume=1") as first:
        assert await first.call("join", group="secret") == "refused"
        assert await first.call("join", group="public-1") == "joined"
        positions = await streams_of(first, "all", "group:public-1")
    positions["group:secret"] = positions["group:public-1"]
    client, result = await resume(app, positions)
    try:
        assert result["group:public-1"]["recovered"] is True
        assert result["group:secret"] == {"recovered": False, "reason": "forbidden"}
        await client.call("shout", group="public-1")
        push = await client.receive_push()
        # The group had no push yet (epoch ""): its first epoch is announced before its first.
        assert push["wscommands.streams"]["group:public-1"]["offset"] == 0
        push = await client.receive_push()
        assert push["shout"] == "public-1"
        assert push["wscommands.position"]["stream"] == "group:public-1"
    finally:
        await client.close()
