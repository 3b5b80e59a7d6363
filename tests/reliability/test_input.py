"""Bad input: oversized frames, nesting bombs, binary frames, garbage of any shape."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wscommands.conf import wscommands_settings
from wscommands.testing import CommandClient
from wscommands.wire.codes import CloseCode
from wscommands.wire.exceptions import ProtocolError
from wscommands.wire.jsoncodec import decode, encode
from wscommands.wire.protocol import parse_frame

ERROR_CODES = {
    "unknown_command", "invalid_arguments", "not_authenticated", "permission_denied",
    "client_error", "command_failed", "rate_limited", "unavailable", "invalid_json",
    "invalid_request",
}  # fmt: skip


async def closed_with(client: CommandClient) -> int:
    """The close code the server ends with (replies before it are ignored)."""
    async with asyncio.timeout(5):
        return await client.wait_closed()


async def test_oversized_frame_closes_4413(limits):
    """A frame over MAX_MESSAGE_SIZE bytes (UTF-8, not characters) closes with 4413."""
    limits(MAX_MESSAGE_SIZE=1000)
    async with CommandClient() as client:
        at_limit = encode({"echo": {"text": "a" * (1000 - 35)}, "request_id": 1})
        assert len(at_limit) == 1000
        await client.send(at_limit)
        assert (await client.receive())["request_id"] == 1
        # 600 characters, 1200 bytes: counted in bytes
        await client.send(encode({"echo": {"text": "é" * 600}}))
        assert await closed_with(client) == 4413


async def test_nesting_limit_and_bomb(limits):
    """Deeper than MAX_JSON_DEPTH is invalid_request; a 200,000-deep bomb too; echo after."""
    limits(MAX_JSON_DEPTH=8)
    async with CommandClient() as client:
        ok = await client.request({"echo": {"text": "x"}, "extra": [[[[[1]]]]]})
        assert ok["echo"] == {"text": "x"}
        deep = '{"echo": {"text": ' + "[" * 9 + "]" * 9 + "}}"
        await client.send(deep)
        reply = await client.receive()
        assert reply["errors"]["request"]["code"] == "invalid_request"
        assert "nested" in reply["errors"]["request"]["message"]
        # brackets inside strings do not count
        assert await client.call("echo", text="[[[[[[[[[[[[[[[[") == {"text": "[[[[[[[[[[[[[[[["}
        await client.send("[" * 200_000)
        assert (await client.receive())["errors"]["request"]["code"] == "invalid_request"
        assert await client.call("echo", text="still here") == {"text": "still here"}


async def test_refused_frames_in_a_row_close_4400(limits):
    """Binary frames get invalid_request; MAX_INVALID_FRAMES refused in a row close 4400."""
    limits(MAX_INVALID_FRAMES=3)
    async with CommandClient() as client:
        for _ in range(2):
            await client.communicator.send_to(bytes_data=b"\x00\x01")
            reply = await client.receive()
            assert reply["errors"]["request"]["code"] == "invalid_request"
        assert await client.call("echo", text="reset") == {"text": "reset"}  # resets the count
        await client.send("not json")
        await client.send("[1]")
        await client.communicator.send_to(bytes_data=b"\x00")
        assert await closed_with(client) == 4400


async def test_rate_limit_then_close_4429(limits):
    """Past the burst: rate_limited with retry_after and the request_id; then close 4429."""
    limits(RATE_LIMIT=1.0, RATE_LIMIT_BURST=3, RATE_LIMIT_CLOSE_AFTER=2)
    async with CommandClient() as client:
        for i in range(3):
            await client.send({"echo": {"text": str(i)}, "request_id": i})
        await client.send({"echo": {"text": "over"}, "request_id": "over"})
        replies = [await client.receive() for _ in range(4)]
        assert [r["request_id"] for r in replies] == [0, 1, 2, "over"]
        error = replies[3]["errors"]["request"]
        assert error["code"] == "rate_limited"
        assert 0 < error["details"]["retry_after"] <= 1.0
        await client.send({"echo": {"text": "again"}})
        assert (await client.receive())["errors"]["request"]["code"] == "rate_limited"
        await client.send({"echo": {"text": "and again"}})
        assert await closed_with(client) == 4429


async def test_rate_limit_recovers_after_retry_after(limits):
    """A client that waits retry_after is served again (the bucket refills)."""
    limits(RATE_LIMIT=20.0, RATE_LIMIT_BURST=1)
    async with CommandClient() as client:
        await client.send({"echo": {"text": "a"}})
        await client.send({"echo": {"text": "b"}, "request_id": 2})
        assert (await client.receive())["echo"] == {"text": "a"}
        retry_after = (await client.receive())["errors"]["request"]["details"]["retry_after"]
        await asyncio.sleep(retry_after)  # the protocol's own instruction, not synchronisation
        assert await client.call("echo", text="c") == {"text": "c"}


# Property: any frame gets a conformant reply or a documented close, and echo still works ----

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
names = st.sampled_from(
    ["echo", "square", "div", "count", "whoami", "report", "legacy_echo", "add", "request_id",
     "errors", "request", "unimplemented", "nope", "authenticate"]
)  # fmt: skip
requests = st.dictionaries(names | st.text(max_size=10), json_values, max_size=4)
frames = (
    st.text(max_size=200)
    | json_values.map(encode)
    | requests.map(encode)
    | st.builds(lambda n: "[" * n + "]" * n, st.integers(0, 3000))
)


def conformant(message: dict) -> None:
    """Assert one server frame is a protocol reply: results and/or a well-formed errors."""
    assert isinstance(message, dict)
    for name, entry in message.get("errors", {}).items():
        if name == "unimplemented":
            assert isinstance(entry, list)
            continue
        assert entry["code"] in ERROR_CODES, entry
        assert isinstance(entry["message"], str)


def expected_close(frame: str) -> int | None:
    """The one close a single frame may cause on a fresh connection (the oracle).

    Every other limit needs more than one frame (MAX_INVALID_FRAMES, the rate) or a bigger one
    (MAX_MESSAGE_SIZE): only a request with ``authenticate``, which fails without a real
    session key, closes (3000, after its reply).
    """
    s = wscommands_settings
    try:
        request = parse_frame(frame, s.MAX_JSON_DEPTH, s.MAX_COMMANDS_PER_REQUEST)
    except ProtocolError:
        return None
    if any(name == "authenticate" for name, _ in request.commands):
        return CloseCode.AUTHENTICATION_FAILED
    return None


async def check_frame(frame: str) -> None:
    close = expected_close(frame)
    async with CommandClient() as client:
        # send_input, not send: the communicator refuses an empty frame; a browser does not
        await client.communicator.send_input({"type": "websocket.receive", "text": frame})
        await client.send({"echo": {"text": "after"}, "request_id": "probe"})
        try:
            async with asyncio.timeout(5):
                while True:
                    message = await client.receive()
                    conformant(message)
                    if message.get("request_id") == "probe":
                        assert message["echo"] == {"text": "after"}
                        break
        except ConnectionError:
            assert client.close_code == close, (frame, client.close_code)
        else:
            assert close is None, (frame, "not closed")


@pytest.mark.django_db(transaction=True)  # a failed authenticate reads the session table
@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
def test_any_frame_gets_conformant_reply_or_documented_close():
    """Hypothesis: arbitrary JSON and text at the consumer; the connection answers after, or
    closes exactly when one frame may close it (a failed authenticate: 3000)."""
    loop = asyncio.new_event_loop()

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(frames)
    def run(frame: str) -> None:
        loop.run_until_complete(check_frame(frame))

    try:
        run()
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def test_decode_survives_nesting_beyond_every_parser():
    """jsoncodec.decode refuses (ValueError) what orjson and the stdlib cannot nest."""
    with pytest.raises(ValueError):
        decode("[" * 100_000 + "]" * 100_000)
