"""PROTOCOL.md, Requests and Replies: the wire format, frame by frame."""

from __future__ import annotations

import logging

import pytest

from wscommands import ClientError, command
from wscommands.testing import CommandClient
from wscommands.wire.jsoncodec import decode

pytestmark = pytest.mark.usefixtures("scratch")


async def test_multiple_commands_run_in_written_order_and_reply_together():
    """Every key is a command; they run in the order written; one reply holds all results.
    (The request_id may be anywhere among them.)"""
    ran = []
    for name in ("zeta", "alpha", "mid"):

        @command(name=f"t.{name}")
        async def record(connection, _name=name):
            ran.append(_name)
            return _name

    async with CommandClient() as client:
        await client.send({"t.zeta": {}, "request_id": 7, "t.alpha": {}, "t.mid": {}})
        assert await client.receive() == {
            "t.zeta": "zeta",
            "t.alpha": "alpha",
            "t.mid": "mid",
            "request_id": 7,
        }
    assert ran == ["zeta", "alpha", "mid"]


@pytest.mark.parametrize(
    "request_id", ["abc", "007", "", 0, -3, 7, 2**70 + 1, -(2**63) - 1, "ünï ✓"]
)
async def test_request_id_is_copied_verbatim(request_id):
    """A string or integer request_id comes back as it was sent (type and value)."""
    async with CommandClient() as client:
        await client.send({"echo": {"text": "hi"}, "request_id": request_id})
        reply = await client.receive()
    assert reply == {"echo": {"text": "hi"}, "request_id": request_id}
    assert type(reply["request_id"]) is type(request_id)


async def test_request_with_only_a_request_id_gets_a_reply():
    """A request that has a request_id always gets exactly one reply."""
    async with CommandClient() as client:
        await client.send('{"request_id": "lonely"}')
        assert await client.receive() == {"request_id": "lonely"}


@pytest.mark.parametrize("bad_id", ["true", "false", "1.0", "1.5", "null", "[1]", '{"a": 1}'])
async def test_invalid_request_id_makes_the_request_invalid_and_is_not_echoed(bad_id):
    """true, 1.0 or any other type than string/integer: invalid_request, nothing runs."""
    ran = []

    @command(name="t.side_effect")
    async def side_effect(connection):
        ran.append(1)
        return 1

    async with CommandClient() as client:
        await client.send(f'{{"t.side_effect": {{}}, "request_id": {bad_id}}}')
        reply = await client.receive()
        assert set(reply) == {"errors"}
        assert set(reply["errors"]) == {"request"}
        assert reply["errors"]["request"]["code"] == "invalid_request"
        assert isinstance(reply["errors"]["request"]["message"], str)
        # The connection still serves requests.
        assert await client.call("echo", text="still here") == {"text": "still here"}
    assert ran == []


@pytest.mark.parametrize("reserved", ["errors", "unimplemented", "request"])
async def test_reserved_key_makes_the_request_invalid_with_its_request_id(reserved):
    """A request carrying errors/unimplemented/request is invalid; its request_id is echoed."""
    ran = []

    @command(name="t.side_effect")
    async def side_effect(connection):
        ran.append(1)

    async with CommandClient() as client:
        await client.send({"t.side_effect": {}, reserved: {}, "request_id": "r1"})
        reply = await client.receive()
        assert reply["request_id"] == "r1"
        assert set(reply) == {"errors", "request_id"}
        assert reply["errors"]["request"]["code"] == "invalid_request"
        assert reserved in reply["errors"]["request"]["message"]
        # Without a request_id there is none to echo.
        await client.send({reserved: 1})
        reply = await client.receive()
        assert reply == {"errors": {"request": reply["errors"]["request"]}}
        assert reply["errors"]["request"]["code"] == "invalid_request"
    assert ran == []


async def test_no_reply_without_request_id_when_every_command_returns_none():
    """Commands returning None and no request_id: no reply at all."""
    ran = []

    @command(name="t.quiet")
    def quiet(connection, n: int):
        ran.append(n)

    async with CommandClient() as client:
        await client.send({"t.quiet": {"n": 1}})
        await client.send({"t.quiet": {"n": 2}, "echo": {"text": "x"}})
        # The first frame the client gets is the reply to the second request.
        assert await client.receive() == {"echo": {"text": "x"}}
        await client.send({"t.quiet": {"n": 3}, "request_id": 3})
        assert await client.receive() == {"request_id": 3}
    assert ran == [1, 2, 3]


async def test_a_request_without_request_id_that_fails_still_gets_its_reply():
    """'or that produced any result or error': errors alone are worth a reply."""
    async with CommandClient() as client:
        await client.send({"nope": {}})
        reply = await client.receive()
    assert "request_id" not in reply
    assert reply["errors"]["nope"]["code"] == "unknown_command"


async def test_exactly_one_reply_per_request():
    """Results and errors of every command of a request come in one reply object."""

    @command(name="t.boom")
    def boom(connection):
        raise RuntimeError("boom")

    async with CommandClient() as client:
        await client.send(
            {"echo": {"text": "a"}, "t.boom": {}, "nope": 1, "square": 3, "request_id": 1}
        )
        await client.send({"echo": {"text": "sentinel"}, "request_id": 2})
        first = await client.receive()
        second = await client.receive()
    assert first["request_id"] == 1
    assert first["echo"] == {"text": "a"}
    assert first["square"] == 9
    assert set(first["errors"]) == {"t.boom", "nope", "unimplemented"}
    assert second == {"echo": {"text": "sentinel"}, "request_id": 2}


async def test_unknown_command_has_an_error_entry_and_is_listed_in_unimplemented():
    """Unknown names: errors[name] is unknown_command, and errors.unimplemented lists them."""
    async with CommandClient() as client:
        reply = await client.request({"nope": {}, "echo": {"text": "hi"}, "nada": 1})
    assert reply["echo"] == {"text": "hi"}
    assert reply["errors"]["nope"]["code"] == "unknown_command"
    assert isinstance(reply["errors"]["nope"]["message"], str)
    assert reply["errors"]["nada"]["code"] == "unknown_command"
    assert reply["errors"]["unimplemented"] == ["nope", "nada"]


async def test_client_error_message_is_shown():
    """A command raising ClientError: code client_error with its message."""
    async with CommandClient() as client:
        reply = await client.request({"div": {"a": 1, "b": 0}, "square": 2})
    assert reply["errors"] == {"div": {"code": "client_error", "message": "division by zero"}}
    assert reply["square"] == 4


async def test_client_error_details_are_sent():
    """ClientError may carry details; they reach the client."""

    @command(name="t.picky")
    async def picky(connection):
        raise ClientError("not like that", {"hint": "like this"})

    async with CommandClient() as client:
        reply = await client.request({"t.picky": {}})
    assert reply["errors"]["t.picky"] == {
        "code": "client_error",
        "message": "not like that",
        "details": {"hint": "like this"},
    }


@pytest.mark.parametrize("is_async", [False, True])
async def test_command_failed_hides_internals_and_logs_the_traceback(caplog, is_async):
    """Any other exception: command_failed, nothing internal in the reply, traceback logged."""
    secret = "SECRET-db-password-in-exception"

    def fail(connection):
        raise KeyError(secret)

    async def afail(connection):
        raise KeyError(secret)

    command(name="t.fail")(afail if is_async else fail)
    caplog.set_level(logging.ERROR, logger="wscommands")
    async with CommandClient() as client:
        await client.send({"t.fail": {}, "echo": {"text": "after"}, "request_id": 1})
        frame = await client.communicator.receive_from()
    assert secret not in frame
    assert "Traceback" not in frame
    assert "KeyError" not in frame
    assert "test_protocol" not in frame
    reply = decode(frame)
    assert reply["errors"]["t.fail"]["code"] == "command_failed"
    assert set(reply["errors"]["t.fail"]) <= {"code", "message"}
    assert reply["echo"] == {"text": "after"}
    logged = [r for r in caplog.records if r.exc_info and r.exc_info[0] is KeyError]
    assert logged, "the traceback must be logged"
    assert "t.fail" in logged[0].getMessage()


async def test_failing_commands_never_stop_the_others_or_close_the_connection():
    """Every kind of failure in one request: the other commands run, the connection lives."""
    ran = []

    @command(name="t.boom")
    def boom(connection):
        raise ZeroDivisionError

    @command(name="t.after")
    def after(connection):
        ran.append("after")
        return "ran"

    async with CommandClient() as client:
        reply = await client.request(
            {"t.boom": {}, "nope": {}, "add": {"a": 1, "b": 2}, "div": [1], "t.after": {}}
        )
        assert reply["t.after"] == "ran"
        assert reply["errors"]["t.boom"]["code"] == "command_failed"
        assert reply["errors"]["nope"]["code"] == "unknown_command"
        assert reply["errors"]["add"]["code"] == "not_authenticated"
        assert reply["errors"]["div"]["code"] == "invalid_arguments"
        for _ in range(3):
            assert await client.call("echo", text="alive") == {"text": "alive"}
    assert ran == ["after"]


@pytest.mark.parametrize("frame", ["not json", "{", '{"a": 1,}', "NaN", "[Infinity]", "'x'"])
async def test_invalid_json(frame):
    """A frame that is not JSON: errors.request.invalid_json; the connection stays open."""
    async with CommandClient() as client:
        await client.send(frame)
        reply = await client.receive()
        assert set(reply) == {"errors"}
        assert reply["errors"]["request"]["code"] == "invalid_json"
        assert isinstance(reply["errors"]["request"]["message"], str)
        assert await client.call("echo", text="ok") == {"text": "ok"}


@pytest.mark.parametrize(
    "frame", ["[]", '[{"echo": {"text": "x"}}]', "1", '"echo"', "null", "true"]
)
async def test_json_that_is_not_an_object_is_an_invalid_request(frame):
    """Arrays, numbers, strings, null: invalid_request, and the connection stays open."""
    async with CommandClient() as client:
        await client.send(frame)
        reply = await client.receive()
        assert reply == {"errors": {"request": reply["errors"]["request"]}}
        assert reply["errors"]["request"]["code"] == "invalid_request"
        assert await client.call("echo", text="ok") == {"text": "ok"}


async def test_binary_frames_are_refused_without_closing():
    """The transport is text frames: a binary frame gets invalid_request, nothing else."""
    async with CommandClient() as client:
        await client.communicator.send_to(bytes_data=b'{"echo": {"text": "x"}, "request_id": 1}')
        reply = await client.receive()
        assert reply["errors"]["request"]["code"] == "invalid_request"
        assert "echo" not in reply
        assert await client.call("echo", text="ok") == {"text": "ok"}


async def test_results_that_json_cannot_hold_become_command_failed(caplog):
    """A result that is not JSON-serialisable fails that command only, and is logged."""

    @command(name="t.unsendable")
    async def unsendable(connection):
        return {"when": object()}

    @command(name="t.nan")
    async def nan(connection):
        return [1j]  # a set is sendable (msgspec writes it as an array); complex is not

    caplog.set_level(logging.ERROR, logger="wscommands")
    async with CommandClient() as client:
        reply = await client.request({"t.unsendable": {}, "echo": {"text": "x"}, "t.nan": {}})
        assert reply["echo"] == {"text": "x"}
        assert reply["errors"]["t.unsendable"]["code"] == "command_failed"
        assert reply["errors"]["t.nan"]["code"] == "command_failed"
        assert "t.unsendable" not in reply
        assert await client.call("echo", text="ok") == {"text": "ok"}
    assert any("t.unsendable" in r.getMessage() for r in caplog.records)


async def test_a_result_json_cannot_spell_is_a_client_event_not_an_error(caplog):
    """NaN and the infinities usually come from the client's input (div of 1e308 by 1e-308):
    command_failed, logged at INFO, never as an ERROR a client could repeat at will."""

    @command(name="t.inf")
    async def inf(connection):
        return {"v": float("inf")}

    caplog.set_level(logging.INFO, logger="wscommands")
    async with CommandClient() as client:
        reply = await client.request({"t.inf": {}})
    assert reply["errors"]["t.inf"]["code"] == "command_failed"
    logged = [(r.levelname, r.getMessage()) for r in caplog.records if "t.inf" in r.getMessage()]
    assert [level for level, _ in logged] == ["INFO"], logged


async def test_json_values_round_trip():
    """Nested objects, unicode, big integers and floats survive the trip."""
    value = {"a": [1, 2.5, None, True, "ünï ✓"], "big": 2**70 + 1, "neg": -(2**63) - 1, "e": {}}

    @command(name="t.same")
    async def same(connection, v: dict, big: int):
        return [v, big]

    async with CommandClient() as client:
        result = await client.call("t.same", v=value, big=-(2**64) - 3)
    assert result == [value, -(2**64) - 3]
    assert isinstance(result[0]["big"], int)


async def test_lone_surrogates_come_back_as_escapes():
    """JSON may escape a lone surrogate; the reply stays valid UTF-8 text."""
    async with CommandClient() as client:
        await client.send('{"echo": {"text": "a\\ud800b"}, "request_id": 1}')
        frame = await client.communicator.receive_from()
        frame.encode("utf-8")  # a text frame must be valid UTF-8
        assert decode(frame) == {"echo": {"text": "a\ud800b"}, "request_id": 1}
        assert await client.call("echo", text="ok") == {"text": "ok"}


async def test_pushes_have_no_request_id():
    """What the server sends unasked is keyed by an event name, without request_id."""

    @command(name="t.push")
    async def push(connection):
        await connection.send({"chat_message": {"text": "hi"}})

    async with CommandClient() as client:
        await client.send({"t.push": {}})
        assert await client.receive() == {"chat_message": {"text": "hi"}}


async def test_an_error_whose_details_json_cannot_hold_still_gets_a_reply(caplog):
    """A ClientError carrying unsendable details, or a result nested too deeply to write,
    fails that command only: the request still gets its one reply."""

    @command(name="t.bad_details")
    async def bad_details(connection):
        raise ClientError("look", {"when": object()})

    @command(name="t.deep")
    async def deep(connection):
        value: list = []
        for _ in range(5000):
            value = [value]
        return value

    caplog.set_level(logging.ERROR, logger="wscommands")
    async with CommandClient() as client:
        reply = await client.request({"t.bad_details": {}, "t.deep": {}, "echo": {"text": "x"}})
        assert reply["echo"] == {"text": "x"}
        assert reply["errors"]["t.bad_details"]["code"] == "command_failed"
        assert reply["errors"]["t.deep"]["code"] == "command_failed"
        assert await client.call("echo", text="ok") == {"text": "ok"}


async def test_unavailable_and_rate_limited_codes():
    """A backend that cannot be reached gives unavailable (retry later); RateLimited carries
    details.retry_after."""
    from wscommands import RateLimited, Unavailable
    from wscommands.backends import BackendUnavailable

    @command(name="t.redis_down")
    async def redis_down(connection):
        raise BackendUnavailable("Connection refused 127.0.0.1:6379")

    @command(name="t.unavailable")
    def unavailable(connection):
        raise Unavailable()

    @command(name="t.slow_down")
    async def slow_down(connection):
        raise RateLimited(details={"retry_after": 1.5})

    async with CommandClient() as client:
        reply = await client.request({"t.redis_down": {}, "t.unavailable": {}, "t.slow_down": {}})
    errors = reply["errors"]
    assert errors["t.redis_down"]["code"] == "unavailable"
    assert "6379" not in errors["t.redis_down"]["message"]
    assert errors["t.unavailable"]["code"] == "unavailable"
    assert errors["t.slow_down"]["code"] == "rate_limited"
    assert errors["t.slow_down"]["details"] == {"retry_after": 1.5}
