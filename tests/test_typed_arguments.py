"""docs/api.md, What is checked: every annotation kind users write, validated by msgspec.

Each kind: a fitting value reaches the function converted (a Struct, an Enum member, a
datetime...), a value that does not fit is refused with the documented details and the
function is not called. An annotation that cannot be checked is refused at registration.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import uuid
from typing import TYPE_CHECKING, Annotated, Any, Literal, NotRequired, TypedDict

import msgspec
import pytest
from django.core.exceptions import ImproperlyConfigured

from wscommands import command
from wscommands.testing import CommandClient, CommandFailedError

if TYPE_CHECKING:
    from decimal import Context  # only for type checkers: cannot be checked at run time

received: list = []


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Point(TypedDict):
    x: int
    y: int
    label: NotRequired[str]


@dataclasses.dataclass
class Size:
    width: float
    height: float = 1.0


class Item(msgspec.Struct, forbid_unknown_fields=True):
    sku: str
    qty: Annotated[int, msgspec.Meta(ge=1)]


class Order(msgspec.Struct):
    items: list[Item]
    note: str = ""


class Cat(msgspec.Struct, tag="cat"):
    lives: int


class Dog(msgspec.Struct, tag="dog"):
    good: bool


class Custom:
    """A plain class: msgspec cannot build it from JSON."""


class Untagged(msgspec.Struct):
    a: int


class AlsoUntagged(msgspec.Struct):
    b: int


@pytest.fixture(autouse=True)
def _nothing_received_yet(scratch):
    received.clear()
    yield


def _register(annotation: Any) -> None:
    async def typed(connection, value):
        received.append(value)
        return msgspec.to_builtins(value)

    typed.__annotations__ = {"value": annotation}
    command(name="t.typed")(typed)


async def _invalid(client: CommandClient, argument: Any) -> dict:
    with pytest.raises(CommandFailedError) as info:
        await client.call("t.typed", value=argument)
    assert info.value.code == "invalid_arguments"
    assert isinstance(info.value.message, str) and info.value.message
    return info.value.details


UUID = "5f0c6b4e-8a4e-4a57-9a8e-2b1f2b6c9d10"

KINDS = [
    # (annotation, a value that fits, what the function receives, [(bad value, details)])
    (
        Literal["a", "b"],
        "a",
        "a",
        [
            ("zzz", {"wrong_type": {"value": "'a' | 'b'"}}),
            (1, {"wrong_type": {"value": "'a' | 'b'"}}),
        ],
    ),
    (Color, "red", Color.RED, [(42, {"wrong_type": {"value": "Color"}})]),
    (Color, "green", Color.GREEN, [("blue", {"wrong_type": {"value": "Color"}})]),
    (Level, 2, Level.HIGH, [(3, {"wrong_type": {"value": "Level"}})]),
    (
        Point,
        {"x": 1, "y": 2},
        {"x": 1, "y": 2},
        [
            ("nope", {"wrong_type": {"value": "Point"}}),
            ({"x": 1}, {"missing": ["value.y"]}),
            (
                {"x": 1, "y": "2"},
                {"wrong_type": {"value": "Point"}, "wrong_type_at": {"value.y": "int"}},
            ),
            (
                {"x": 1, "y": 2, "label": 3},
                {"wrong_type": {"value": "Point"}, "wrong_type_at": {"value.label": "str"}},
            ),
        ],
    ),
    (
        Size,
        {"width": 2},
        Size(2.0, 1.0),
        [
            (
                {"width": "2"},
                {"wrong_type": {"value": "Size"}, "wrong_type_at": {"value.width": "float"}},
            )
        ],
    ),
    (
        Order,
        {"items": [{"sku": "a", "qty": 1}]},
        Order([Item("a", 1)]),
        [
            (
                {
                    "items": [
                        {"sku": "a", "qty": 1},
                        {"sku": "b", "qty": 2},
                        {"sku": "c", "qty": "3"},
                    ]
                },
                {"wrong_type": {"value": "Order"}, "wrong_type_at": {"value.items[2].qty": "int"}},
            ),
            (
                {"items": [{"sku": "a", "qty": 0}]},
                {"invalid": {"value.items[0].qty": "Expected `int` >= 1"}},
            ),
            ({"items": [{"qty": 1}]}, {"missing": ["value.items[0].sku"]}),
            ({"items": [{"sku": "a", "qty": 1, "x": 1}]}, {"unexpected": ["value.items[0].x"]}),
            ([], {"wrong_type": {"value": "Order"}}),
        ],
    ),
    (
        Cat | Dog,
        {"type": "dog", "good": True},
        Dog(True),
        [
            (
                {"type": "cow"},
                {
                    "wrong_type": {"value": "Cat | Dog"},
                    "wrong_type_at": {"value.type": "'cat' | 'dog'"},
                },
            ),
            (
                {"type": "dog", "good": 1},
                {"wrong_type": {"value": "Cat | Dog"}, "wrong_type_at": {"value.good": "bool"}},
            ),
        ],
    ),
    (
        tuple[int, int],
        [1, 2],
        (1, 2),
        [
            ("12", {"wrong_type": {"value": "tuple[int, int]"}}),
            (
                [1, "2"],
                {"wrong_type": {"value": "tuple[int, int]"}, "wrong_type_at": {"value[1]": "int"}},
            ),
            ([1, 2, 3], {"invalid": {"value": "Expected `array` of length 2, got 3"}}),
        ],
    ),
    (
        tuple[str, ...],
        ["a"],
        ("a",),
        [
            (
                ["a", 1],
                {"wrong_type": {"value": "tuple[str, ...]"}, "wrong_type_at": {"value[1]": "str"}},
            )
        ],
    ),
    (
        Annotated[int, msgspec.Meta(ge=0, le=10)],
        10,
        10,
        [
            (-1, {"invalid": {"value": "Expected `int` >= 0"}}),
            (11, {"invalid": {"value": "Expected `int` <= 10"}}),
            ("1", {"wrong_type": {"value": "int"}}),
        ],
    ),
    (
        Annotated[str, msgspec.Meta(min_length=1, max_length=3)],
        "abc",
        "abc",
        [
            ("", {"invalid": {"value": "Expected `str` of length >= 1"}}),
            ("abcd", {"invalid": {"value": "Expected `str` of length <= 3"}}),
        ],
    ),
    (
        Annotated[str, msgspec.Meta(pattern="^[0-9]+$")],
        "42",
        "42",
        [("4x", {"invalid": {"value": "Expected `str` matching regex '^[0-9]+$'"}})],
    ),
    (
        datetime.datetime,
        "2026-11-29T20:00:00Z",
        datetime.datetime(2026, 11, 29, 20, tzinfo=datetime.UTC),
        [
            ("yesterday", {"wrong_type": {"value": "datetime"}}),
            (5, {"wrong_type": {"value": "datetime"}}),
        ],
    ),
    (
        datetime.date,
        "2026-11-29",
        datetime.date(2026, 11, 29),
        [("29/11", {"wrong_type": {"value": "date"}})],
    ),
    (uuid.UUID, UUID, uuid.UUID(UUID), [("not-a-uuid", {"wrong_type": {"value": "UUID"}})]),
    (
        decimal.Decimal,
        "1.10",
        decimal.Decimal("1.10"),
        [
            ("one", {"wrong_type": {"value": "Decimal"}}),
            (True, {"wrong_type": {"value": "Decimal"}}),
        ],
    ),
    (
        dict[str, list[Point]],
        {"a": [{"x": 1, "y": 2}]},
        {"a": [{"x": 1, "y": 2}]},
        [({"a": [{"x": 1, "y": 2}], "b": [{"x": 1}]}, {"missing": ["value.b[0].y"]})],
    ),
    (
        set[int],
        [1, 2, 2],
        {1, 2},
        [([1, "2"], {"wrong_type": {"value": "set[int]"}, "wrong_type_at": {"value[1]": "int"}})],
    ),
    (
        list[Item] | None,
        None,
        None,
        [
            (
                [{"sku": 1, "qty": 1}],
                {
                    "wrong_type": {"value": "list[Item] | None"},
                    "wrong_type_at": {"value[0].sku": "str"},
                },
            )
        ],
    ),
]


@pytest.mark.parametrize(("annotation", "good", "converted", "bad"), KINDS)
async def test_each_annotation_kind_is_validated_and_converted(annotation, good, converted, bad):
    """A fitting value arrives converted; each bad one is refused with its details, uncalled."""
    _register(annotation)
    async with CommandClient() as client:
        await client.call("t.typed", value=good)
        assert received == [converted]
        assert type(received[0]) is type(converted)
        for value, details in bad:
            assert await _invalid(client, value) == details, value
    assert len(received) == 1


async def test_a_positional_argument_is_validated_and_converted_too():
    """{"t.first": "2026-11-29"} -> first(connection, date(2026, 11, 29))."""

    @command(name="t.first")
    def first(connection, day: datetime.date, more: int = 0):
        received.append(day)

    async with CommandClient() as client:
        await client.call("t.first", "2026-11-29")
        with pytest.raises(CommandFailedError) as info:
            await client.call("t.first", "someday")
    assert info.value.details == {"wrong_type": {"day": "date"}}
    assert received == [datetime.date(2026, 11, 29)]


async def test_every_argument_is_reported_at_once():
    """Missing, unexpected, wrong and invalid arguments of one call, all in one details."""

    @command(name="t.many")
    def many(connection, order: Order, color: Color, n: Annotated[int, msgspec.Meta(gt=0)], m: int):
        received.append("called")

    async with CommandClient() as client:
        with pytest.raises(CommandFailedError) as info:
            await client.call(
                "t.many", order={"items": [{"sku": "a", "qty": "1"}]}, color="blue", n=0, extra=1
            )
    assert info.value.details == {
        "missing": ["m"],
        "unexpected": ["extra"],
        "wrong_type": {"order": "Order", "color": "Color"},
        "wrong_type_at": {"order.items[0].qty": "int"},
        "invalid": {"n": "Expected `int` >= 1"},
    }
    assert "order.items[0].qty must be int" in info.value.message
    assert received == []


@pytest.mark.parametrize(
    ("annotation", "words"),
    [
        (Custom, ["'value'", "Custom", "cannot check", "typing.Any", "msgspec.Struct"]),
        (list[Custom], ["list[Custom]", "cannot check"]),
        (Untagged | AlsoUntagged, ["Untagged | AlsoUntagged", "tag"]),
    ],
)
def test_an_annotation_that_cannot_be_checked_is_refused_at_registration(annotation, words):
    """Never silently unchecked: @command raises ImproperlyConfigured saying what to write."""

    def f(connection, value):
        pass

    f.__annotations__ = {"value": annotation}
    with pytest.raises(ImproperlyConfigured) as info:
        command(name="t.refused")(f)
    for word in words:
        assert word in str(info.value)
    assert "test_typed_arguments.py" in str(info.value)  # where the function is


def test_a_name_only_type_checkers_know_is_refused_at_registration():
    """With postponed annotations, a name imported under TYPE_CHECKING cannot be resolved."""

    with pytest.raises(ImproperlyConfigured) as info:

        @command(name="t.refused")
        def f(connection, context: Context):
            pass

    assert "'context'" in str(info.value) and "TYPE_CHECKING" in str(info.value)


def test_an_uncheckable_return_annotation_is_refused_too():
    """The return annotation is the result's published schema: it must be describable."""
    with pytest.raises(ImproperlyConfigured) as info:

        @command(name="t.refused")
        def f(connection) -> Custom:
            pass

    assert "return annotation" in str(info.value)


async def test_the_connection_parameter_may_be_annotated_with_anything():
    """The first parameter is the connection: its annotation (here a name only type checkers
    know) is neither checked nor refused; the other parameters are."""

    @command(name="t.conn")
    def f(connection: Context, n: int) -> int:
        received.append(connection)
        return n

    async with CommandClient() as client:
        assert await client.call("t.conn", n=3) == 3
        with pytest.raises(CommandFailedError) as info:
            await client.call("t.conn", n="3")
        assert info.value.details == {"wrong_type": {"n": "int"}}
    assert len(received) == 1 and hasattr(received[0], "send")


async def test_var_keyword_and_var_positional_annotations_check_each_value():
    """**options: int checks every extra key's value (named by its key); *rest: Color the
    positional value."""

    @command(name="t.kw")
    def kw(connection, a: int = 0, **options: int):
        received.append(options)

    @command(name="t.rest")
    def rest(connection, *colors: Color):
        received.append(colors)

    async with CommandClient() as client:
        await client.call("t.kw", a=1, x=2, y=3)
        with pytest.raises(CommandFailedError) as info:
            await client.call("t.kw", x="2", y=True, z=4)
        assert info.value.details == {"wrong_type": {"x": "int", "y": "int"}}
        await client.call("t.rest", "red")
        with pytest.raises(CommandFailedError) as info:
            await client.call("t.rest", "blue")
        assert info.value.details == {"wrong_type": {"colors": "Color"}}
    assert received == [{"x": 2, "y": 3}, (Color.RED,)]
