"""What a resumable connection is told and sent when a stream's history was lost or is too
far behind, in-process (memory backend and layer): docs/protocol.md, "The delivery
guarantee, precisely" (rules 1, 5 and 6)."""

from __future__ import annotations

from typing import Any

from channels.routing import URLRouter
from django.conf import settings
from django.test import override_settings
from django.urls import path

import wscommands
from wscommands import CommandConsumer, Registry
from wscommands.backends import history_store
from wscommands.commands.registry import Command
from wscommands.testing import CommandClient

RESUME, POSITION = "wscommands.resume", "wscommands.position"


def application() -> URLRouter:
    """A consumer with its own registry: ``join`` and ``shout`` (a push to a group)."""
    own = Registry()

    async def join(connection, group: str):
        await connection.join(group)

    async def shout(connection, group: str, n: int):
        await connection.send_to_group(group, {"n": n})

    own.register(Command(name="join", func=join))
    own.register(Command(name="shout", func=shout))

    class Own(CommandConsumer):
        registry = own

    return URLRouter([path("ws/", Own.as_asgi())])


async def lose_history(group: str) -> None:
    """Drop the group's history, as a Redis flush would: with one stream kept at most, a
    push to another stream evicts it (the next push starts a new epoch)."""
    with override_settings(WSCOMMANDS={**settings.WSCOMMANDS, "HISTORY_MAX_STREAMS": 1}):
        await wscommands.send_to_group(f"{group}-elsewhere", {"n": 0})


async def numbered(client: CommandClient) -> dict[str, Any]:
    """The next push with an ``n`` (announcements skipped)."""
    while "n" not in (push := await client.receive_push()):
        pass
    return push


async def streams_of(client: CommandClient, *names: str) -> dict[str, Any]:
    """The announced positions (wscommands.streams frames) until every name was seen."""
    seen: dict[str, Any] = {}
    while not all(n in seen for n in names):
        seen.update((await client.receive_push()).get("wscommands.streams", {}))
    return seen


async def test_a_join_after_a_lost_history_is_announced_the_backends_epoch():
    """Soak seed 1001, round 427 (R5): Redis was flushed while a process followed a group;
    a connection that joined there afterwards was announced the lost epoch (the process
    learns of a new one from its first push) and then got the new epoch's first push: an
    epoch change with no fault in its life. The announcement takes the backend's epoch."""
    app = application()
    async with CommandClient(app, "/ws/?resume=1") as a, CommandClient(app, "/ws/?resume=1") as b:
        await a.call("join", group="kept")  # the process follows the group from here on
        await a.call("shout", group="kept", n=1)
        assert (await numbered(a))["n"] == 1  # delivered here (a Redis layer takes a hop)
        await lose_history("kept")
        await b.call("join", group="kept")
        assert (await streams_of(b, "group:kept"))["group:kept"] == {"epoch": "", "offset": 0}
        await a.call("shout", group="kept", n=2)
        start = await b.receive_push()  # the first epoch's start, then its first push
        epoch = start["wscommands.streams"]["group:kept"]["epoch"]
        assert start["wscommands.streams"]["group:kept"] == {"epoch": epoch, "offset": 0}
        push = await b.receive_push()
        assert push["n"] == 2 and push[POSITION] == {
            "stream": "group:kept",
            "epoch": epoch,
            "offset": 1,
        }


async def test_a_resume_from_a_lost_epoch_replays_what_the_new_one_has(monkeypatch):
    """Soak seed 18, round 17 (R1): the history of a group a connection received was lost;
    the new epoch's first push is the cue to resume, and the reply, history_lost at the
    stream's current offset, made the connection drop the new epoch's pushes still on their
    way to it. What the new epoch has that it was not sent is replayed first."""
    app = application()
    async with CommandClient(app, "/ws/?resume=1") as a, CommandClient(app, "/ws/?resume=1") as b:
        await a.call("join", group="room")
        await b.call("join", group="room")
        await a.call("shout", group="room", n=1)
        old = (await numbered(b))[POSITION]
        await lose_history("room")
        await a.call("shout", group="room", n=2)  # offset 1 of the new epoch
        first = await numbered(b)
        assert first["n"] == 2 and first[POSITION]["epoch"] != old["epoch"]

        store, calls = history_store(), []
        read = store.history_read

        async def read_while_a_push_comes(*args: Any) -> Any:
            if not calls:  # offset 2 is published while the resume is answered
                await wscommands.send_to_group("room", {"n": 3})
            calls.append(args)
            return await read(*args)

        monkeypatch.setattr(store, "history_read", read_while_a_push_comes)
        named = {"epoch": old["epoch"], "offset": old["offset"]}
        reply = await b.request({RESUME: {"streams": {"group:room": named}}})
        entry = reply[RESUME]["group:room"]
        assert entry["reason"] == "history_lost" and entry["offset"] == 2
        await a.call("shout", group="room", n=4)
        seen: list[int] = []
        while 4 not in seen:
            push = await b.receive_push()
            seen += [push["n"]] if "n" in push else []
        assert seen == [3, 4]


async def test_a_resume_too_far_behind_still_sends_the_pushes_on_their_way(settings, monkeypatch):
    """Soak seeds 18 and 1001 (R1): a client reconnected after a kill and was announced
    ``all``; its resume from the old connection's position was too far behind, and the
    reply, at the current offset, made it drop a broadcast published after its accept that
    was on its way to it. What was published since the connection's start goes first."""
    settings.WSCOMMANDS = {**settings.WSCOMMANDS, "HISTORY_SIZE": 3}
    for n in range(5):
        await wscommands.broadcast({"n": n})
    async with CommandClient(application(), "/ws/?resume=1") as b:
        start = (await streams_of(b, "all"))["all"]
        store, calls = history_store(), []
        read = store.history_read

        async def read_while_a_push_comes(*args: Any) -> Any:
            if not calls:  # published while the resume is answered
                await wscommands.broadcast({"n": 5})
            calls.append(args)
            return await read(*args)

        monkeypatch.setattr(store, "history_read", read_while_a_push_comes)
        old = {"epoch": start["epoch"], "offset": start["offset"] - 4}
        entry = (await b.request({RESUME: {"streams": {"all": old}}}))[RESUME]["all"]
        assert entry["reason"] == "too_far_behind" and entry["offset"] == start["offset"] + 1
        await wscommands.broadcast({"n": 6})
        seen: list[int] = []
        while 6 not in seen:
            push = await b.receive_push()
            seen += [push["n"]] if "n" in push else []
        assert seen == [5, 6]
