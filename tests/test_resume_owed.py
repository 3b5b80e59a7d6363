"""A resume that cannot recover a stream still sends what rule 1 owes the connection,
in-process (memory backend and layer): docs/protocol.md, "The delivery guarantee,
precisely" (rules 1 and 6)."""

from __future__ import annotations

from typing import Any

from channels.routing import URLRouter
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


async def streams_of(client: CommandClient, *names: str) -> dict[str, Any]:
    """The announced positions (wscommands.streams frames) until every name was seen."""
    seen: dict[str, Any] = {}
    while not all(n in seen for n in names):
        seen.update((await client.receive_push()).get("wscommands.streams", {}))
    return seen


async def test_a_resume_from_a_lost_epoch_replays_what_the_new_one_has(settings, monkeypatch):
    """Soak seed 18, round 17 (R1): Redis was flushed while a process followed a group. A
    connection joining there was announced the lost epoch, got the new epoch's first push
    and resumed (a new epoch is the cue to). The reply, history_lost at the stream's current
    offset, made the connection drop the new epoch's pushes still on their way to it,
    published after its join. What the new epoch has that it was not sent is replayed."""
    # One stream kept: a push to another drops the room's history (its epoch is lost).
    settings.WSCOMMANDS = {**settings.WSCOMMANDS, "HISTORY_MAX_STREAMS": 1}
    app = application()
    async with CommandClient(app, "/ws/?resume=1") as a, CommandClient(app, "/ws/?resume=1") as b:
        await a.call("join", group="room")  # the process follows the room from here on
        await a.call("shout", group="room", n=1)
        await a.call("shout", group="elsewhere", n=0)
        await b.call("join", group="room")
        stale = (await streams_of(b, "group:room"))["group:room"]
        await a.call("shout", group="room", n=2)  # offset 1 of the new epoch
        first = await b.receive_push()
        assert first["n"] == 2 and first[POSITION]["epoch"] != stale["epoch"]

        store, calls = history_store(), []
        read = store.history_read

        async def read_while_a_push_comes(*args: Any) -> Any:
            if not calls:  # offset 2 is published while the resume is answered
                await wscommands.send_to_group("room", {"n": 3})
            calls.append(args)
            return await read(*args)

        monkeypatch.setattr(store, "history_read", read_while_a_push_comes)
        reply = await b.request({RESUME: {"streams": {"group:room": stale}}})
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
