"""API.md, hooks: on_connect before the first request (failure: logged, close 4500);
on_disconnect on every kind of disconnect; sync and async alike."""

from __future__ import annotations

import asyncio
import logging

import pytest

import wscommands
from tests.testapp.helpers import eventually
from wscommands import command, on_connect, on_disconnect
from wscommands.testing import CommandClient

events: list = []


@pytest.fixture(autouse=True)
def _hooks_and_commands(scratch):
    events.clear()

    @on_disconnect
    def sync_bye(connection):
        events.append(("sync_bye", connection.id))

    @on_disconnect
    async def async_bye(connection):
        events.append(("async_bye", connection.id))

    @command(name="t.id")
    async def id_(connection):
        return connection.id

    yield


def disconnected(connection_id: str) -> bool:
    return ("sync_bye", connection_id) in events and ("async_bye", connection_id) in events


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_on_connect_finishes_before_the_first_request(kind):
    """A slow on_connect hook: the request sent meanwhile runs only once it has finished."""
    release = asyncio.Event()
    loop = asyncio.get_running_loop()

    hold = []  # the hook holds connections up only once this is set

    async def async_hook(connection):
        if hold:
            await release.wait()
        connection.set_state("ready", kind)

    def sync_hook(connection):
        if hold:
            asyncio.run_coroutine_threadsafe(release.wait(), loop).result(5)
        connection.set_state("ready", kind)

    on_connect(async_hook if kind == "async" else sync_hook)

    @command(name="t.ready")
    async def ready(connection):
        return connection.get_state("ready", "not yet")

    async with CommandClient() as other:
        hold.append(True)
        client = CommandClient()
        await client.connect()
        await client.send({"t.ready": {}, "request_id": 1})
        # Meanwhile pushes reach the client and other connections are served: the request
        # had every chance to run, and is held back.
        for n in range(3):
            assert await other.call("echo", text=str(n)) == {"text": str(n)}
        await wscommands.broadcast({"meanwhile": True})
        assert await client.receive() == {"meanwhile": True}
        release.set()
        assert await client.receive() == {"t.ready": kind, "request_id": 1}
        await client.close()


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_a_failing_on_connect_is_logged_and_closes_with_4500(caplog, kind):
    """The hook's error is logged with its traceback, the connection closed with 4500, and
    on_disconnect still runs."""
    ran = []

    async def async_hook(connection):
        raise RuntimeError("hook broke")

    def sync_hook(connection):
        raise RuntimeError("hook broke")

    on_connect(async_hook if kind == "async" else sync_hook)

    @command(name="t.never")
    async def never(connection):
        ran.append(1)

    caplog.set_level(logging.ERROR, logger="wscommands")
    client = CommandClient()
    await client.connect()
    await client.send({"t.never": {}, "request_id": 1})
    assert await client.wait_closed() == 4500
    await client.close()
    assert ran == []
    assert any(r.exc_info and "hook broke" in str(r.exc_info[1]) for r in caplog.records)
    assert [e[0] for e in events] == ["sync_bye", "async_bye"]


async def test_on_disconnect_runs_when_the_client_closes():
    """The usual case: the client goes away; sync and async hooks see the connection."""
    async with CommandClient() as client:
        connection_id = await client.call("t.id")
        assert events == []
    assert events == [("sync_bye", connection_id), ("async_bye", connection_id)]


async def test_on_disconnect_runs_after_a_failed_authenticate(transactional_db):
    """The server closes with 3000; the hooks run when the socket is gone."""
    async with CommandClient() as client:
        connection_id = await client.call("t.id")
        await client.send({"authenticate": {"session_id": "nope"}})
        assert await client.wait_closed() == 3000
    assert disconnected(connection_id)


async def test_on_disconnect_runs_after_errors():
    """Commands that failed in every way do not keep the hooks from running."""

    @command(name="t.boom")
    def boom(connection):
        raise RuntimeError

    async with CommandClient() as client:
        connection_id = await client.call("t.id")
        await client.request({"t.boom": {}, "nope": {}, "div": {"a": 1, "b": 0}})
        await client.send("not json")
        await client.receive()
    assert disconnected(connection_id)


async def test_on_disconnect_runs_when_a_command_closes_the_connection():
    """connection.close() from a command: the hooks run too."""

    @command(name="t.close")
    async def close(connection):
        await connection.close(1000)

    async with CommandClient() as client:
        connection_id = await client.call("t.id")
        await client.send({"t.close": {}})
        assert await client.wait_closed() == 1000
    assert disconnected(connection_id)


async def test_a_failing_on_disconnect_hook_is_logged_and_the_others_still_run(caplog):
    """One broken teardown hook does not skip the rest."""

    @on_disconnect
    async def broken(connection):
        raise ValueError("teardown broke")

    @on_disconnect
    def last(connection):
        events.append(("last", connection.id))

    caplog.set_level(logging.ERROR, logger="wscommands")
    async with CommandClient() as client:
        connection_id = await client.call("t.id")
    await eventually(lambda: ("last", connection_id) in events)
    assert disconnected(connection_id)
    assert any(r.exc_info and "teardown broke" in str(r.exc_info[1]) for r in caplog.records)


async def test_the_example_bye_hook_tells_rooms_the_connection_left(transactional_db):
    """The example on_disconnect tells the other members of its rooms."""
    async with CommandClient() as stays:
        await stays.call("chat.join", room="lobby")
        async with CommandClient() as leaves:
            await leaves.call("chat.join", room="lobby")
            connection_id = await leaves.call("t.id")
        assert await stays.receive_push() == {
            "chat_left": {"room": "lobby", "connection_id": connection_id}
        }
