"""wscommands.testing.CommandClient: the helper an application's own tests use."""

from __future__ import annotations

import pytest

from wscommands import command
from wscommands.testing import CommandClient, CommandFailedError

pytestmark = pytest.mark.usefixtures("scratch")


async def test_call_returns_the_result_in_one_line():
    """Keyword arguments become the argument object; one positional value is sent as is."""
    async with CommandClient() as client:
        assert await client.call("echo", text="hi") == {"text": "hi"}
        assert await client.call("square", 4) == 16
        assert await client.call("whoami") == (await client.request({"whoami": {}}))["whoami"]
        with pytest.raises(TypeError):
            await client.call("square", 1, 2)
        with pytest.raises(TypeError):
            await client.call("div", 1, b=2)


async def test_call_raises_command_failed_error_with_the_entry():
    """An errors entry for the command becomes CommandFailedError(code, message, details)."""
    async with CommandClient() as client:
        with pytest.raises(CommandFailedError) as info:
            await client.call("div", a=1)
        assert info.value.command == "div"
        assert info.value.code == "invalid_arguments"
        assert info.value.message == "missing argument: b"
        assert info.value.details == {"missing": ["b"]}
        with pytest.raises(CommandFailedError) as info:
            await client.call("nope")
        assert info.value.code == "unknown_command"
        assert info.value.details is None


async def test_a_command_argument_may_be_called_name():
    """call()'s own parameter does not clash with a command argument called name."""

    @command(name="t.hello")
    async def hello(connection, name: str):
        return f"hello {name}"

    async with CommandClient() as client:
        assert await client.call("t.hello", name="ann") == "hello ann"


async def test_request_returns_the_whole_reply_and_keeps_pushes_for_receive_push():
    """request() matches its reply by request_id; pushes that arrive meanwhile are kept."""

    @command(name="t.chatty")
    async def chatty(connection):
        await connection.send({"note": 1})
        await connection.send({"note": 2})
        return "done"

    async with CommandClient() as client:
        reply = await client.request({"t.chatty": {}, "nope": {}})
        assert reply["t.chatty"] == "done"
        assert reply["errors"]["unimplemented"] == ["nope"]
        assert "request_id" in reply
        assert await client.receive_push() == {"note": 1}
        assert await client.receive_push() == {"note": 2}


async def test_receive_push_keeps_replies_for_their_request():
    """Replies read while waiting for a push are not lost."""

    @command(name="t.push")
    async def push(connection):
        await connection.send({"push": 1})

    async with CommandClient() as client:
        await client.send({"echo": {"text": "stray"}, "request_id": "mine"})
        await client.send({"t.push": {}})
        assert await client.receive_push() == {"push": 1}
        assert client._replies["mine"] == {"echo": {"text": "stray"}, "request_id": "mine"}


async def test_wait_closed_returns_the_close_code(transactional_db):
    async with CommandClient() as client:
        await client.send({"authenticate": {"session_id": "nope"}})
        assert await client.wait_closed() == 3000


async def test_a_refused_handshake_raises_connection_refused():
    """A foreign Origin is refused before the connection opens."""
    client = CommandClient(headers=[(b"origin", b"http://evil.example")])
    with pytest.raises(ConnectionRefusedError):
        await client.connect()


def test_error_reply_keeps_its_first_name():
    """ErrorReply is the name; CommandFailedError, the first one, is the same class."""
    from wscommands.testing import ErrorReply

    assert CommandFailedError is ErrorReply
