"""docs/api.md, Describing the API: the built-in ``describe`` command at each setting."""

from __future__ import annotations

import logging
from typing import Literal, TypedDict

import msgspec
import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.urls import path

from tests.testapp.helpers import logged_in
from wscommands import CommandConsumer, Registry, checks, command, declare_push
from wscommands.conf import DEFAULTS
from wscommands.testing import CommandClient, CommandFailedError

pytestmark = pytest.mark.usefixtures("transactional_db")


class OrderLine(msgspec.Struct):
    """One line of an order."""

    sku: str
    qty: int


class Total(TypedDict):
    lines: int
    shipping: Literal["fast", "cheap"]


class Tick(msgspec.Struct):
    """Sent every second."""

    n: int


@pytest.fixture(autouse=True)
def _commands(scratch):
    @command(name="t.order")
    def order(
        connection, lines: list[OrderLine], shipping: Literal["fast", "cheap"] = "cheap"
    ) -> Total:
        """Place an order."""
        return {"lines": len(lines), "shipping": shipping}

    @command(name="t.mine", login_required=True)
    def mine(connection) -> list[int]:
        return []

    @command(name="t.admin", permission="auth.view_user")
    def admin(connection) -> None:
        pass

    declare_push("t.tick", Tick)
    yield


def _describe_setting(settings, level: str) -> None:
    settings.WSCOMMANDS = {**settings.WSCOMMANDS, "DESCRIBE": level}


async def _describe(session_key: str | None = None) -> dict:
    async with CommandClient(session_key=session_key) as client:
        return await client.call("describe")


async def test_off_by_default_describe_is_an_unknown_command(settings):
    """Nothing is published unless the setting says so (the example project says "staff")."""
    assert DEFAULTS["DESCRIBE"] == "off"
    settings.WSCOMMANDS = {k: v for k, v in settings.WSCOMMANDS.items() if k != "DESCRIBE"}
    with pytest.raises(CommandFailedError) as info:
        await _describe()
    assert info.value.code == "unknown_command"


async def test_public_describes_what_an_anonymous_caller_may_run(settings):
    """Anonymous: no login_required or permission commands; schemas, pushes and a hash."""
    _describe_setting(settings, "public")
    api = await _describe()
    assert "t.order" in api["commands"] and "echo" in api["commands"]
    assert "t.mine" not in api["commands"] and "t.admin" not in api["commands"]
    order = api["commands"]["t.order"]
    assert order["description"] == "Place an order."
    lines = {"type": "array", "items": {"$ref": "#/$defs/OrderLine"}}
    assert order["params"] == {
        "anyOf": [
            {
                "type": "object",
                "properties": {"lines": lines, "shipping": {"enum": ["cheap", "fast"]}},
                "required": ["lines"],
                "additionalProperties": False,
            },
            lines,  # {"t.order": [...]}: the first parameter alone
        ]
    }
    assert order["result"] == {"$ref": "#/$defs/Total"}
    assert api["$defs"]["OrderLine"]["properties"] == {
        "sku": {"type": "string"},
        "qty": {"type": "integer"},
    }
    assert api["pushes"]["t.tick"] == {
        "payload": {"$ref": "#/$defs/Tick"},
        "description": "Sent every second.",
    }
    assert api["hash"].startswith("sha256:") and len(api["hash"]) == 71


async def test_the_hash_names_the_whole_api_and_changes_with_it(settings):
    """Every caller sees the same hash; registering a command changes it."""
    _describe_setting(settings, "public")
    anonymous = await _describe()
    _, key = await logged_in("ann", "auth.view_user")
    ann = await _describe(key)
    assert {"t.mine", "t.admin"} <= set(ann["commands"]) - set(anonymous["commands"])
    assert ann["hash"] == anonymous["hash"]

    @command(name="t.new")
    def new(connection, x: int) -> int:
        return x

    assert (await _describe())["hash"] != anonymous["hash"]


async def test_staff_level_refuses_anonymous_and_non_staff_users(settings):
    """staff: not_authenticated for anonymous, permission_denied for other users."""
    _describe_setting(settings, "staff")
    with pytest.raises(CommandFailedError) as info:
        await _describe()
    assert info.value.code == "not_authenticated"
    _, key = await logged_in("bob")
    with pytest.raises(CommandFailedError) as info:
        await _describe(key)
    assert info.value.code == "permission_denied"
    staff, key = await logged_in("carol")
    staff.is_staff = True
    await sync_to_async(staff.save)()
    api = await _describe(key)
    assert "t.mine" in api["commands"]
    assert "t.admin" not in api["commands"]  # staff, but without auth.view_user


async def test_a_seed_style_command_is_described_as_taking_anything(settings):
    """Seed commands (msg, response, connection) have no annotations: any argument."""
    _describe_setting(settings, "public")
    api = await _describe()
    assert api["commands"]["legacy_echo"]["params"] == {}


def test_an_app_command_named_describe_is_refused_at_start_up_when_the_built_in_is_on(settings):
    """The built-in would hide it: start-up says so and how to fix it."""

    @command(name="describe")
    def mine(connection):
        pass

    _describe_setting(settings, "public")
    with pytest.raises(ImproperlyConfigured, match="Rename the command"):
        apps.get_app_config("wscommands").ready()


async def test_results_and_pushes_that_do_not_match_are_logged_in_development(settings, caplog):
    """VALIDATE_OUTGOING (DEBUG by default): a mismatch is logged, the message still sent."""
    settings.WSCOMMANDS = {**settings.WSCOMMANDS, "VALIDATE_OUTGOING": True}

    @command(name="t.liar")
    async def liar(connection, n: int) -> Total:
        await connection.send({"t.tick": {"n": str(n)}})
        return {"lines": n, "shipping": "slow"}  # type: ignore[typeddict-item]

    @command(name="t.honest")
    async def honest(connection, n: int) -> Total:
        await connection.send({"t.tick": Tick(n)})
        return {"lines": n, "shipping": "fast"}

    with caplog.at_level(logging.WARNING, logger="wscommands"):
        async with CommandClient() as client:
            assert await client.call("t.honest", n=1) == {"lines": 1, "shipping": "fast"}
            assert await client.receive_push() == {"t.tick": {"n": 1}}  # a Struct, as JSON
    assert not [r for r in caplog.records if "does not match" in r.getMessage()]
    with caplog.at_level(logging.WARNING, logger="wscommands"):
        async with CommandClient() as client:
            await client.send({"t.liar": {"n": 2}, "request_id": 1})
            assert await client.receive() == {"t.tick": {"n": "2"}}
            assert await client.receive() == {
                "t.liar": {"lines": 2, "shipping": "slow"},
                "request_id": 1,
            }
    messages = [r.getMessage() for r in caplog.records]
    assert any("push 't.tick' does not match" in m and "$.n" in m for m in messages), messages
    assert any("result of command 't.liar'" in m and "$.shipping" in m for m in messages), messages


def test_an_unknown_describe_level_is_refused_at_start_up(settings):
    """DESCRIBE must be off, staff or public: the system check says which and how."""
    _describe_setting(settings, "everyone")
    errors = [e for e in checks.check_settings() if e.id == "wscommands.E012"]
    assert len(errors) == 1 and "'everyone'" in errors[0].msg and "staff" in errors[0].hint


async def test_a_consumer_with_its_own_registry_describes_and_checks_its_own_api(settings, caplog):
    """describe answers from the consumer's registry; its declared pushes are the ones checked."""
    _describe_setting(settings, "public")
    settings.WSCOMMANDS = {**settings.WSCOMMANDS, "VALIDATE_OUTGOING": True}
    own = Registry()

    @own.command(name="own.tick")
    async def tick(connection, n: int) -> None:
        await connection.send({"own.tick": {"n": str(n)}})

    own.declare_push("own.tick", Tick)

    class OwnConsumer(CommandConsumer):
        registry = own

    application = URLRouter([path("own/", OwnConsumer.as_asgi())])
    with caplog.at_level(logging.WARNING, logger="wscommands"):
        async with CommandClient(application, path="/own/") as client:
            api = await client.call("describe")
            await client.call("own.tick", n=1)
    assert list(api["commands"]) == ["own.tick"] and list(api["pushes"]) == ["own.tick"]
    assert any("push 'own.tick' does not match" in r.getMessage() for r in caplog.records)
