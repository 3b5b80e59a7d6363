"""API.md, messaging: send, broadcast, send_to_subset, groups, and the module-level functions
used outside a connection; PROTOCOL.md: pushes and when a connection starts receiving them."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync, sync_to_async

import wscommands
from tests.testapp.helpers import logged_in, scratch_registry, without_presence_events
from wscommands import command
from wscommands.hub.process import get_hub
from wscommands.testing import CommandClient, CommandFailedError

connections: dict = {}


@pytest.fixture(autouse=True)
def _commands(settings):
    """Scratch commands that expose the connection API to the tests."""
    without_presence_events(settings)
    connections.clear()
    with scratch_registry():

        @command(name="t.id")
        async def id_(connection):
            connections[connection.id] = connection
            return connection.id

        @command(name="t.broadcast")
        async def broadcast(connection, message: dict, everyone_else: bool = False):
            await connection.broadcast(message, everyone_else=everyone_else)

        @command(name="t.subset")
        async def subset(connection, ids: list[str], message: dict, as_objects: bool = False):
            recipients = [connections.get(i, i) for i in ids] if as_objects else ids
            await connection.send_to_subset(recipients, message)

        @command(name="t.to_user")
        async def to_user(connection, username: str, message: dict):
            from django.contrib.auth.models import User

            user = await User.objects.aget(username=username)
            await connection.send_to_subset([user], message)

        @command(name="t.join")
        async def join(connection, group: str):
            await connection.join(group)

        @command(name="t.leave")
        async def leave(connection, group: str):
            await connection.leave(group)

        @command(name="t.group")
        async def group(connection, group: str, message: dict, everyone_else: bool = False):
            await connection.send_to_group(group, message, everyone_else=everyone_else)

        yield


async def next_push_is(client: CommandClient, expected: dict) -> None:
    assert await client.receive_push() == expected


async def sentinel(*clients: CommandClient) -> None:
    """Broadcast a marker: a client whose next push is the marker received nothing before."""
    await wscommands.broadcast({"sentinel": True})
    for client in clients:
        await next_push_is(client, {"sentinel": True})


async def test_send_pushes_to_this_connection_before_the_reply():
    """connection.send: a push (no request_id) to this connection only."""

    @command(name="t.send")
    async def send(connection):
        await connection.send({"note": {"n": 1}})
        return "done"

    async with CommandClient() as client, CommandClient() as other:
        await client.send({"t.send": {}, "request_id": 1})
        assert await client.receive() == {"note": {"n": 1}}
        assert await client.receive() == {"t.send": "done", "request_id": 1}
        await sentinel(other)


async def test_broadcast_reaches_every_connection_including_the_sender():
    """broadcast(message): every connection, the sender too."""
    async with CommandClient() as a, CommandClient() as b, CommandClient() as c:
        await a.call("t.broadcast", message={"news": 1})
        for client in (a, b, c):
            await next_push_is(client, {"news": 1})


async def test_broadcast_everyone_else_skips_the_sender():
    """everyone_else=True: all but the sending connection."""
    async with CommandClient() as a, CommandClient() as b, CommandClient() as c:
        await a.call("t.broadcast", message={"news": 2}, everyone_else=True)
        for client in (b, c):
            await next_push_is(client, {"news": 2})
        await sentinel(a)


async def test_send_to_subset_by_ids_and_by_connection_objects():
    """Recipients as connection ids or Connection objects; others get nothing; unknown
    ids are ignored."""
    async with (
        CommandClient() as a,
        CommandClient() as b,
        CommandClient() as c,
    ):
        ids = [await client.call("t.id") for client in (a, b, c)]
        await a.call("t.subset", ids=[ids[1], "nobody", "no~such"], message={"hi": "ids"})
        await next_push_is(b, {"hi": "ids"})
        await sentinel(a, c)
        await c.call("t.subset", ids=[ids[0], ids[2]], message={"hi": "objs"}, as_objects=True)
        await next_push_is(a, {"hi": "objs"})
        await next_push_is(c, {"hi": "objs"})
        await sentinel(b)


async def test_send_to_subset_refuses_what_is_not_a_recipient():
    """A recipient that is not an id, connection or user is a mistake, not silence."""

    @command(name="t.bad_subset")
    async def bad_subset(connection):
        await connection.send_to_subset([42], {"x": 1})

    async with CommandClient() as client:
        with pytest.raises(CommandFailedError) as info:
            await client.call("t.bad_subset")
        assert info.value.code == "command_failed"
    with pytest.raises(TypeError):
        await wscommands.send_to_subset("not-a-list", {"x": 1})


async def test_send_to_subset_with_a_user_reaches_every_connection_of_that_user(
    transactional_db,
):
    """A user recipient: each of the user's connections (cookie or authenticate)."""
    _, ann_key = await logged_in("ann")
    _, bob_key = await logged_in("bob")
    async with (
        CommandClient(session_key=ann_key) as ann1,
        CommandClient() as ann2,
        CommandClient(session_key=bob_key) as bob,
        CommandClient() as anonymous,
    ):
        await ann2.request({"authenticate": {"session_id": ann_key}})
        await anonymous.call("t.to_user", username="ann", message={"for": "ann"})
        await next_push_is(ann1, {"for": "ann"})
        await next_push_is(ann2, {"for": "ann"})
        await sentinel(bob, anonymous)


async def test_groups_join_send_leave():
    """Members receive group messages; non-members and those who left do not."""
    async with CommandClient() as a, CommandClient() as b, CommandClient() as c:
        await a.call("t.join", group="room-1")
        await b.call("t.join", group="room-1")
        await b.call("t.join", group="room-1")  # joining twice: still one delivery
        await c.call("t.group", group="room-1", message={"in": "room"})
        await next_push_is(a, {"in": "room"})
        await next_push_is(b, {"in": "room"})
        await sentinel(a, b, c)
        await b.call("t.leave", group="room-1")
        await b.call("t.leave", group="never-joined")
        await a.call("t.group", group="room-1", message={"after": "leave"})
        await next_push_is(a, {"after": "leave"})
        await sentinel(a, b, c)


async def test_a_join_is_answered_once_the_process_receives_the_group(monkeypatch):
    """Soak seed 1001, round 70 (R1): a plain connection joined a group while the first
    member on its process was still being added to the layer's group; its join was answered
    at once, and a push sent right after that never reached the process. Every join waits
    for the layer membership and the stream's position that the first one started."""
    async with CommandClient() as a, CommandClient() as b, CommandClient() as c:
        layer = get_hub().layer
        original, reached, gate = layer.group_add, asyncio.Event(), asyncio.Event()

        async def slow_add(group: str, channel: str) -> None:
            if "slow-room" in group:
                reached.set()
                await gate.wait()
            await original(group, channel)

        monkeypatch.setattr(layer, "group_add", slow_add)
        first = asyncio.create_task(a.call("t.join", group="slow-room"))
        await reached.wait()
        second = asyncio.create_task(b.call("t.join", group="slow-room"))
        for _ in range(20):  # round trips: without the wait, b's join is answered in a few
            await c.call("t.id")
        assert not second.done()
        gate.set()
        await asyncio.gather(first, second)
        await c.call("t.group", group="slow-room", message={"to": "room"})
        await next_push_is(a, {"to": "room"})
        await next_push_is(b, {"to": "room"})


async def test_send_to_group_everyone_else_skips_the_sender():
    """send_to_group(..., everyone_else=True): the other members only."""
    async with CommandClient() as a, CommandClient() as b:
        for client in (a, b):
            await client.call("t.join", group="g")
        await a.call("t.group", group="g", message={"x": 1}, everyone_else=True)
        await next_push_is(b, {"x": 1})
        await sentinel(a, b)


@pytest.mark.parametrize("name", ["", "has space", "slash/no", "ü", "a:b", "x" * 100])
async def test_invalid_group_names_are_refused(name):
    """Group names: letters, digits, '.', '_', '-', and short enough for channel layers."""

    @command(name="t.try_join")
    async def try_join(connection, group: str):
        try:
            await connection.join(group)
        except ValueError as exc:
            return str(exc)
        return "joined"

    async with CommandClient() as client:
        assert await client.call("t.try_join", group=name) != "joined"
        assert await client.call("t.try_join", group="Valid.name_1-2") == "joined"
    with pytest.raises(ValueError):
        await wscommands.send_to_group(name, {"x": 1})


async def test_module_level_functions_from_plain_async_code():
    """broadcast, send_to_group, send_to_subset outside any connection (a task, a signal)."""
    async with CommandClient() as a, CommandClient() as b:
        await a.call("t.join", group="news")
        b_id = await b.call("t.id")
        await wscommands.broadcast({"all": 1})
        await next_push_is(a, {"all": 1})
        await next_push_is(b, {"all": 1})
        await wscommands.send_to_group("news", {"group": 1})
        await next_push_is(a, {"group": 1})
        await wscommands.send_to_subset([b_id], {"subset": 1})
        await next_push_is(b, {"subset": 1})
        await sentinel(a, b)


async def test_module_level_functions_from_a_sync_django_view():
    """A sync view (run in a thread, as Django's ASGI handler does) broadcasts through
    async_to_sync."""

    def view():
        async_to_sync(wscommands.broadcast)({"from": "view"})
        async_to_sync(wscommands.send_to_group)("room", {"from": "view", "to": "room"})

    async with CommandClient() as a, CommandClient() as b:
        await b.call("t.join", group="room")
        await sync_to_async(view)()
        await next_push_is(a, {"from": "view"})
        await next_push_is(b, {"from": "view"})
        await next_push_is(b, {"from": "view", "to": "room"})
        await sentinel(a)


async def test_a_connection_receives_broadcasts_as_soon_as_its_handshake_completes():
    """No request needed: a broadcast sent right after the handshake arrives."""
    async with CommandClient() as a:
        await wscommands.broadcast({"early": 1})
        await next_push_is(a, {"early": 1})
    for n in range(3):
        client = CommandClient()
        await client.connect()
        try:
            await wscommands.broadcast({"early": n})
            await next_push_is(client, {"early": n})
        finally:
            await client.close()


async def test_the_example_chat_uses_groups(transactional_db):
    """chat.join / chat.say / chat.leave: the room's members get chat_message pushes."""
    _, ann_key = await logged_in("ann", "chat.add_message")
    async with CommandClient(session_key=ann_key) as ann, CommandClient() as guest:
        assert await guest.call("chat.join", room="lobby") == {"room": "lobby", "history": []}
        await ann.call("chat.join", room="lobby")
        assert await ann.call("chat.say", room="lobby", text="hi") is None
        message = {"chat_message": {"room": "lobby", "from": "ann", "text": "hi"}}
        await next_push_is(guest, message)
        await next_push_is(ann, message)
        await guest.call("chat.leave", room="lobby")
        await ann.call("chat.say", room="lobby", text="again")
        await next_push_is(ann, {"chat_message": {**message["chat_message"], "text": "again"}})
        await sentinel(guest)
        history = (await guest.call("chat.join", room="lobby"))["history"]
        assert history == [{"from": "ann", "text": "hi"}, {"from": "ann", "text": "again"}]


async def test_connection_ids_are_distinct_strings_naming_their_process():
    """connection.id: a str, unique; it carries the process's own channel so ids of other
    processes cannot collide."""
    async with CommandClient() as a, CommandClient() as b, CommandClient() as c:
        ids = [await client.call("t.id") for client in (a, b, c)]
    assert all(isinstance(i, str) and i for i in ids)
    assert len(set(ids)) == 3
    processes = {i.rpartition("~")[0] for i in ids}
    assert len(processes) == 1 and processes != {""}


async def test_the_hub_class_setting_chooses_the_class_of_each_processs_hub(settings):
    """WSCOMMANDS["HUB_CLASS"]: the hub in use is that class; its deliver() sees every
    fan-out message and decides what reaches the connections."""
    from tests.testapp import hubs
    from wscommands.hub.process import get_hub

    hubs.delivered.clear()
    settings.WSCOMMANDS = {**settings.WSCOMMANDS, "HUB_CLASS": "tests.testapp.hubs.RecordingHub"}
    async with CommandClient() as client:
        assert type(get_hub()) is hubs.RecordingHub
        await wscommands.broadcast({"private": 1})
        await wscommands.broadcast({"public": 2})
        assert await client.receive_push() == {"public": 2}
    assert [m["text"] for m in hubs.delivered] == ['{"private":1}', '{"public":2}']
