"""API.md, Writing commands: arguments are checked against the signature before the call."""

from __future__ import annotations

from typing import Any, Optional

import pytest

from wscommands import command
from wscommands.testing import CommandClient, CommandFailedError

calls: list = []


@pytest.fixture(autouse=True)
def _no_calls_yet(scratch):
    calls.clear()
    yield


def _typed(connection, i: int = 0, f: float = 0.0, s: str = "", b: bool = False):
    calls.append((i, f, s, b))
    return [i, f, s, b]


async def _invalid(client: CommandClient, name: str, argument) -> dict:
    with pytest.raises(CommandFailedError) as info:
        await client.call(name, argument)
    assert info.value.code == "invalid_arguments"
    assert isinstance(info.value.message, str) and info.value.message
    return info.value.details


async def test_missing_argument_matches_the_protocol_example():
    """The example of PROTOCOL.md, verbatim: missing b of div."""
    async with CommandClient() as client:
        await client.send({"div": {"a": 1}, "square": 3, "request_id": 8})
        reply = await client.receive()
    assert reply == {
        "square": 9,
        "errors": {
            "div": {
                "code": "invalid_arguments",
                "message": "missing argument: b",
                "details": {"missing": ["b"]},
            }
        },
        "request_id": 8,
    }


async def test_missing_unexpected_and_wrong_type_details_and_the_function_is_not_called():
    """details lists missing names, unexpected names and name -> expected type."""

    @command(name="t.f")
    def f(connection, a: int, b: str, c: list[int], d=None):
        calls.append("called")

    async with CommandClient() as client:
        details = await _invalid(client, "t.f", {"a": "1", "c": [1], "x": 1, "y": 2})
    assert details == {"missing": ["b"], "unexpected": ["x", "y"], "wrong_type": {"a": "int"}}
    assert calls == []


@pytest.mark.parametrize(
    ("annotation", "spelling", "good", "bad"),
    [
        (int, "int", [0, -5, 2**70], [True, 1.0, "1", None, [1]]),
        (float, "float", [1, 1.5, -0.0], [True, "1.5", None]),
        (str, "str", ["", "x"], [1, None, ["x"]]),
        (bool, "bool", [True, False], [0, 1, "true", None]),
        (list, "list", [[], [1, "a"]], [{}, "ab", None]),
        (dict, "dict", [{}, {"a": [1]}], [[], "x", None]),
        (list[int], "list[int]", [[], [1, 2]], [{"a": 1}, "12"]),
        (dict[str, int], "dict[str, int]", [{}, {"a": 1}], [[1], "x"]),
        (str | None, "str | None", ["x", None], [1, ["x"], False]),
        (Optional[int], "int | None", [1, None], ["1", True, 1.5]),  # noqa: UP045
        (list[str | None], "list[str | None]", [["a", None]], ["a", 1]),
    ],
)
async def test_simple_annotations_are_checked(annotation, spelling, good, bad):
    """Each simple annotation accepts what fits and names itself in details.wrong_type."""

    async def typed(connection, value):
        return [value]

    typed.__annotations__ = {"value": annotation}
    command(name="t.typed")(typed)
    async with CommandClient() as client:
        for value in good:
            assert await client.call("t.typed", value=value) == [value]
        for value in bad:
            details = await _invalid(client, "t.typed", {"value": value})
            assert details == {"wrong_type": {"value": spelling}}, value


@pytest.mark.parametrize(
    ("annotation", "bad", "details"),
    [
        (
            list[int],
            [1, "2"],
            {"wrong_type": {"value": "list[int]"}, "wrong_type_at": {"value[1]": "int"}},
        ),
        (
            list[int],
            [True],
            {"wrong_type": {"value": "list[int]"}, "wrong_type_at": {"value[0]": "int"}},
        ),
        (
            dict[str, int],
            {"a": 1, "b": "1"},
            {"wrong_type": {"value": "dict[str, int]"}, "wrong_type_at": {"value.b": "int"}},
        ),
        (
            dict[str, int],
            {"a b": True},
            {"wrong_type": {"value": "dict[str, int]"}, "wrong_type_at": {'value["a b"]': "int"}},
        ),
        (
            list[str | None],
            [None, 1],
            {
                "wrong_type": {"value": "list[str | None]"},
                "wrong_type_at": {"value[1]": "str | None"},
            },
        ),
        (
            dict[str, list[int]],
            {"x": [1, 2, "3"]},
            {
                "wrong_type": {"value": "dict[str, list[int]]"},
                "wrong_type_at": {"value.x[2]": "int"},
            },
        ),
    ],
)
async def test_a_wrong_value_inside_a_container_is_named_by_its_path(annotation, bad, details):
    """wrong_type's key is the path to the wrong value, its value the type expected there."""

    async def typed(connection, value):
        calls.append(value)

    typed.__annotations__ = {"value": annotation}
    command(name="t.typed")(typed)
    async with CommandClient() as client:
        assert await _invalid(client, "t.typed", {"value": bad}) == details
    assert calls == []


async def test_json_true_is_not_an_int_and_an_int_fits_a_float():
    """true is refused where an int is annotated; 3 is accepted where a float is."""
    command(name="t.typed")(_typed)
    async with CommandClient() as client:
        assert await client.call("t.typed", i=1, f=3, s="s", b=True) == [1, 3, "s", True]
        details = await _invalid(client, "t.typed", {"i": True})
        assert details == {"wrong_type": {"i": "int"}}
        details = await _invalid(client, "t.typed", {"f": False, "b": 1})
        assert details == {"wrong_type": {"f": "float", "b": "bool"}}
    assert calls == [(1, 3, "s", True)]


async def test_unannotated_and_any_parameters_accept_any_json_value():
    """No annotation, or typing.Any, means any JSON value, unchecked, on purpose."""

    @command(name="t.loose")
    async def loose(connection, a, b: Any = None):
        return [a, b]

    async with CommandClient() as client:
        assert await client.call("t.loose", a={"x": 1}, b=[1, "s"]) == [{"x": 1}, [1, "s"]]


async def test_var_keyword_accepts_any_keys_but_still_checks_declared_ones():
    """A function with **kwargs accepts any keys; its named parameters are still checked."""

    @command(name="t.kw")
    def kw(connection, a: int, **options):
        return {"a": a, "options": options}

    async with CommandClient() as client:
        result = await client.call("t.kw", a=1, zzz=2, **{"not-an-identifier": [3]})
        assert result == {"a": 1, "options": {"zzz": 2, "not-an-identifier": [3]}}
        assert await _invalid(client, "t.kw", {"zzz": 2}) == {"missing": ["a"]}
        assert await _invalid(client, "t.kw", {"a": "1"}) == {"wrong_type": {"a": "int"}}


async def test_the_connection_parameter_cannot_be_sent_as_an_argument():
    """The first parameter is the connection: a key of that name is unexpected, even with
    **kwargs (it must not crash the call as a duplicate argument)."""

    @command(name="t.kw")
    def kw(connection, **options):
        calls.append(options)

    @command(name="t.conn")
    def conn(conn, text: str = ""):
        calls.append(text)

    async with CommandClient() as client:
        assert await _invalid(client, "t.kw", {"connection": 1}) == {"unexpected": ["connection"]}
        assert await _invalid(client, "t.conn", {"conn": 1}) == {"unexpected": ["conn"]}
    assert calls == []


async def test_defaults_may_be_omitted():
    """Parameters with defaults are optional."""

    @command(name="t.defaults")
    async def defaults(connection, a: int, b: int = 10, c: str | None = None):
        return [a, b, c]

    async with CommandClient() as client:
        assert await client.call("t.defaults", a=1) == [1, 10, None]
        assert await client.call("t.defaults", a=1, b=2, c="x") == [1, 2, "x"]


async def test_a_value_that_is_not_an_object_is_one_positional_argument():
    """{"square": 4} -> square(connection, 4), checked against the first parameter."""

    @command(name="t.first")
    def first(connection, items, more: int = 0):
        return [items, more]

    async with CommandClient() as client:
        reply = await client.request({"square": 4, "echo": "hi", "t.first": [1, [2]], "sleep": 0})
        assert reply == {
            "square": 16,
            "echo": {"text": "hi"},
            "t.first": [[1, [2]], 0],
            "sleep": 0,
            "request_id": reply["request_id"],
        }
        assert await _invalid(client, "square", "4") == {"wrong_type": {"n": "float"}}
        assert await _invalid(client, "square", True) == {"wrong_type": {"n": "float"}}
        # A positional argument for a command needing two: the second is missing.
        assert await _invalid(client, "div", 1) == {"missing": ["b"]}


async def test_a_positional_argument_for_a_command_without_parameters_is_refused():
    """whoami takes nothing: a positional value is invalid_arguments, not a crash."""
    async with CommandClient() as client:
        with pytest.raises(CommandFailedError) as info:
            await client.call("whoami", 5)
    assert info.value.code == "invalid_arguments"


@pytest.mark.parametrize("argument", ["{}", "null"])
async def test_empty_object_and_null_call_with_no_arguments(argument):
    """{} and null call the command with no arguments (defaults apply; required missing)."""

    @command(name="t.noargs")
    def noargs(connection, a: int = 5):
        calls.append(a)
        return a

    async with CommandClient() as client:
        await client.send(f'{{"t.noargs": {argument}, "request_id": 1}}')
        assert await client.receive() == {"t.noargs": 5, "request_id": 1}
        await client.send(f'{{"div": {argument}, "request_id": 2}}')
        reply = await client.receive()
        assert reply["errors"]["div"]["details"] == {"missing": ["a", "b"]}
    assert calls == [5]


async def test_async_and_sync_commands_are_checked_alike():
    """Checking happens before the call, whatever kind of function the command is."""

    @command(name="t.sync")
    def sync(connection, n: int):
        calls.append(n)

    @command(name="t.async")
    async def asynchronous(connection, n: int):
        calls.append(n)

    async with CommandClient() as client:
        reply = await client.request({"t.sync": {"n": "1"}, "t.async": {"n": "1"}})
    assert reply["errors"]["t.sync"]["details"] == {"wrong_type": {"n": "int"}}
    assert reply["errors"]["t.async"]["details"] == {"wrong_type": {"n": "int"}}
    assert calls == []
