"""API.md, the connection object: per-command and connection-local state, global state,
call_later."""

from __future__ import annotations

import asyncio

import pytest

import wscommands
from tests.testapp.helpers import eventually
from wscommands import command, on_connect
from wscommands.testing import CommandClient, CommandFailedError

pytestmark = pytest.mark.usefixtures("scratch")


async def test_connection_state_is_per_command_and_per_connection_and_kept():
    """The example count: each connection counts its own calls; other commands see {}."""

    @command(name="t.peek")
    def peek(connection):
        return connection.get_connection_state()

    async with CommandClient() as first, CommandClient() as second:
        assert [await first.call("count") for _ in range(3)] == [1, 2, 3]
        assert await second.call("count") == 1
        assert await first.call("count") == 4
        assert await first.call("t.peek") == {}


async def test_update_connection_state_merges_like_dict_update_sync_and_async():
    """update_connection_state merges; sync commands (in threads) see the same state."""

    @command(name="t.update")
    async def update(connection, mapping: dict):
        connection.update_connection_state(mapping)
        return connection.get_connection_state()

    @command(name="t.sync_update")
    def sync_update(connection, mapping: dict):
        connection.update_connection_state(mapping)
        return connection.get_connection_state()

    async with CommandClient() as client:
        assert await client.call("t.update", mapping={"a": 1}) == {"a": 1}
        assert await client.call("t.update", mapping={"b": 2}) == {"a": 1, "b": 2}
        assert await client.call("t.update", mapping={"a": 3}) == {"a": 3, "b": 2}
        assert await client.call("t.sync_update", mapping={"s": 1}) == {"s": 1}
        assert await client.call("t.sync_update", mapping={"t": 2}) == {"s": 1, "t": 2}


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_call_later_runs_with_the_scheduling_commands_state(kind):
    """A call_later callback (sync or async) reads and updates its command's state."""
    seen = []

    async def async_callback(tag, *, extra):
        seen.append((tag, extra, dict(connection_of[0].get_connection_state())))
        connection_of[0].update_connection_state({"fired": True})

    def sync_callback(tag, *, extra):
        seen.append((tag, extra, dict(connection_of[0].get_connection_state())))
        connection_of[0].update_connection_state({"fired": True})

    connection_of = []

    @command(name="t.schedule")
    async def schedule(connection, read: bool = False):
        if read:
            return connection.get_connection_state()
        connection_of.append(connection)
        connection.update_connection_state({"scheduled": True})
        callback = sync_callback if kind == "sync" else async_callback
        connection.call_later(0.01, callback, "tag", extra=1)

    @command(name="t.other")
    async def other(connection):
        connection.update_connection_state({"other": True})

    async with CommandClient() as client:
        await client.call("t.schedule")
        await client.call("t.other")
        await eventually(lambda: bool(seen))
        assert seen == [("tag", 1, {"scheduled": True})]
        await eventually(lambda: "fired" in connection_of[0]._command_states["t.schedule"])
        assert await client.call("t.schedule", read=True) == {"scheduled": True, "fired": True}


async def test_the_example_remind_command_pushes_later():
    """remind: call_later then connection.send, a push without request_id."""
    async with CommandClient() as client:
        assert await client.call("remind", seconds=0.01, text="tea") is None
        assert await client.receive_push() == {"reminder": {"text": "tea"}}


async def test_call_later_handle_cancel_drops_the_call():
    """cancel() before it runs: the call never happens (a later one does)."""
    fired = []

    @command(name="t.two")
    async def two(connection):
        handle = connection.call_later(0.01, fired.append, "cancelled")
        connection.call_later(0.05, fired.append, "kept")
        handle.cancel()
        assert handle.cancelled

    async with CommandClient() as client:
        await client.call("t.two")
        await eventually(lambda: fired == ["kept"])
    assert fired == ["kept"]


async def test_pending_calls_are_cancelled_on_disconnect():
    """Disconnect cancels calls not yet run, and stops callbacks that are running."""
    handles = []
    stopped = asyncio.Event()
    running = asyncio.Event()

    async def long_running():
        running.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            stopped.set()
            raise

    @command(name="t.later")
    async def later(connection):
        handles.append(connection.call_later(0, long_running))
        handles.append(connection.call_later(3600, print, "never"))

    async with CommandClient() as client:
        await client.call("t.later")
        await asyncio.wait_for(running.wait(), 5)
    await asyncio.wait_for(stopped.wait(), 5)
    assert handles[1].cancelled


async def test_get_state_and_set_state_are_shared_by_commands_and_hooks_of_a_connection():
    """Connection-local values: set by a hook or a command, read by any command."""

    @on_connect
    def hook(connection):
        connection.set_state("greeted", True)

    @command(name="t.set")
    def set_(connection, key: str, value):
        connection.set_state(key, value)

    @command(name="t.get")
    async def get(connection, key: str):
        return connection.get_state(key, "absent")

    async with CommandClient() as first, CommandClient() as second:
        assert await first.call("t.get", key="greeted") is True
        await first.call("t.set", key="lang", value="fr")
        assert await first.call("t.get", key="lang") == "fr"
        assert await second.call("t.get", key="lang") == "absent"
        # The example hello hook sets "calls"; the example report reads it.
        assert (await first.call("report", year=1))["calls"] == 0


async def test_global_state_get_update_increment_through_the_connection():
    """get_global_state(key) / (no key: everything), update merges, increment returns."""

    @command(name="t.global")
    async def global_(connection, update: dict | None = None, key: str | None = None):
        if update is not None:
            await connection.update_global_state(update)
        return await connection.get_global_state(key)

    @command(name="t.incr")
    async def incr(connection, key: str, amount: int | float = 1):
        return await connection.increment_global_state(key, amount)

    async with CommandClient() as first, CommandClient() as second:
        assert await first.call("t.global", key="missing") is None
        await first.call("t.global", update={"a": 1, "b": {"x": [1]}})
        assert await second.call("t.global") == {"a": 1, "b": {"x": [1]}}
        assert await second.call("t.global", update={"a": 2, "c": None}) == {
            "a": 2,
            "b": {"x": [1]},
            "c": None,
        }
        assert await first.call("t.global", key="b") == {"x": [1]}
        assert await first.call("t.incr", key="n") == 1
        assert await second.call("t.incr", key="n", amount=5) == 6
        assert await first.call("t.incr", key="n", amount=-1.5) == 4.5
        with pytest.raises(CommandFailedError):  # "b" holds no number
            await first.call("t.incr", key="b")


async def test_update_global_state_is_all_keys_or_none():
    """A mapping with one value JSON cannot hold changes nothing at all."""

    @command(name="t.bad_update")
    async def bad_update(connection):
        await connection.update_global_state({"a": 2, "z": object(), "new": 1})

    await wscommands.update_global_state({"a": 1})
    async with CommandClient() as client:
        with pytest.raises(CommandFailedError) as info:
            await client.call("t.bad_update")
        assert info.value.code == "command_failed"
    assert await wscommands.get_global_state() == {"a": 1}


async def count_up(connection) -> int:
    return await connection.increment_global_state("counter")


async def count_get(connection) -> int:
    return await connection.get_global_state("counter") or 0


async def test_increment_global_state_is_atomic():
    """Many increments at once from many connections: none is lost."""
    command(name="t.count_up")(count_up)
    async with CommandClient() as first, CommandClient() as second:
        requests = [client.call("t.count_up") for client in (first, second) * 10]
        values = await asyncio.gather(*requests)
    assert sorted(values) == list(range(1, 21))
    assert await wscommands.get_global_state("counter") == 20


@pytest.mark.django_db(transaction=True)
async def test_the_example_counter_broadcasts_its_new_value():
    """counter.increment tells every connection; counter.get reads it (from the database:
    the example keeps it there, so it survives restarts; the library's state stays as is)."""
    async with CommandClient() as first, CommandClient() as second:
        assert await first.call("counter.get") == 0
        assert await first.call("counter.increment", amount=3) == 3
        assert await second.receive_push() == {"counter": {"value": 3}}
        assert await first.receive_push() == {"counter": {"value": 3}}
        assert await second.call("counter.get") == 3


async def test_module_level_global_state_from_outside_a_connection():
    """Views and tasks use wscommands.get/update/increment_global_state; commands see it."""
    await wscommands.update_global_state({"motd": "hello"})
    assert await wscommands.increment_global_state("counter", 2) == 2
    command(name="t.count_up")(count_up)
    command(name="t.count_get")(count_get)
    async with CommandClient() as client:
        assert await client.call("t.count_get") == 2
        await client.call("t.count_up")
    assert await wscommands.get_global_state("counter") == 3
    assert await wscommands.get_global_state() == {"motd": "hello", "counter": 3}


async def test_sync_commands_use_the_connection_api_too():
    """A sync command (in a worker thread) schedules call_later, reads its state, and sends
    through async_to_sync, as Django code does."""
    from asgiref.sync import async_to_sync

    fired = []

    def later(value):
        fired.append((value, connection_of[0].get_connection_state()))

    connection_of = []

    @command(name="t.sync_api")
    def sync_api(connection):
        connection_of.append(connection)
        connection.update_connection_state({"mine": True})
        connection.call_later(0.01, later, "fired")
        async_to_sync(connection.send)({"from_thread": True})
        return "scheduled"

    async with CommandClient() as client:
        await client.send({"t.sync_api": {}, "request_id": 1})
        assert await client.receive() == {"from_thread": True}
        assert await client.receive() == {"t.sync_api": "scheduled", "request_id": 1}
        await eventually(lambda: bool(fired))
    assert fired == [("fired", {"mine": True})]
