"""docs/api.md, Typed arguments: pydantic models as annotations (pydantic is optional).

An annotation containing a pydantic model is validated by pydantic (with the model's own
configuration), refused with the same ``details`` shape, described in ``describe`` and the
generated schemas, and sent back as JSON when a command returns one.
"""

from __future__ import annotations

import logging

import pydantic
import pytest
from django.core.exceptions import ImproperlyConfigured

from wscommands import command, declare_push, registry
from wscommands.commands import pydantic_models as models
from wscommands.schema.document import api_document
from wscommands.schema.typescript import typescript
from wscommands.testing import CommandClient, CommandFailedError

received: list = []


class Address(pydantic.BaseModel):
    city: str
    zip_code: str = pydantic.Field(pattern=r"^\d{5}$")


class Customer(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    name: str
    age: int = pydantic.Field(ge=0)
    addresses: list[Address] = []


class Greeting(pydantic.BaseModel):
    """Sent to greet a customer."""

    text: str


@pytest.fixture(autouse=True)
def _commands(scratch):
    received.clear()

    @command(name="t.customer")
    async def customer(
        connection, customer: Customer, tags: list[Address] | None = None
    ) -> Greeting:
        received.append(customer)
        return Greeting(text=f"hello {customer.name}")

    yield


async def _invalid(client: CommandClient, **argument) -> dict:
    with pytest.raises(CommandFailedError) as info:
        await client.call("t.customer", **argument)
    assert info.value.code == "invalid_arguments"
    return info.value.details


async def test_a_model_argument_is_validated_by_pydantic_and_given_as_the_model():
    """The function gets a Customer; its result (a model) is sent as JSON."""
    async with CommandClient() as client:
        result = await client.call(
            "t.customer",
            customer={
                "name": "ann",
                "age": 30,
                "addresses": [{"city": "Oslo", "zip_code": "01234"}],
            },
        )
    assert result == {"text": "hello ann"}
    assert received == [
        Customer(name="ann", age=30, addresses=[Address(city="Oslo", zip_code="01234")])
    ]


async def test_a_refused_model_gives_the_usual_details_with_paths():
    """missing, unexpected (extra="forbid"), wrong_type and invalid, named by path; uncalled."""
    async with CommandClient() as client:
        details = await _invalid(
            client,
            customer={
                "age": -1,
                "addresses": [{"city": "Oslo", "zip_code": "01234"}, {"city": 5, "zip_code": "x"}],
                "nick": "a",
            },
        )
        assert await _invalid(client, customer="ann") == {"wrong_type": {"customer": "Customer"}}
        assert await _invalid(client, customer={"name": "b", "age": 1}, tags=[{"city": "x"}]) == {
            "missing": ["tags[0].zip_code"]
        }
    assert details["missing"] == ["customer.name"]
    assert details["unexpected"] == ["customer.nick"]
    assert details["wrong_type"] == {"customer": "Customer"}
    assert details["wrong_type_at"] == {"customer.addresses[1].city": "str"}
    assert set(details["invalid"]) == {"customer.age", "customer.addresses[1].zip_code"}
    assert "greater than or equal to 0" in details["invalid"]["customer.age"]
    assert received == []


async def test_models_are_described_like_every_other_type(settings, caplog):
    """describe / TypeScript carry pydantic's schema; a wrong push is logged in development."""
    declare_push("t.greeting", Greeting)
    document = api_document(registry)
    params = document["commands"]["t.customer"]["params"]
    assert params["properties"]["customer"] == {"$ref": "#/$defs/Customer"}
    assert document["commands"]["t.customer"]["result"] == {"$ref": "#/$defs/Greeting"}
    assert document["$defs"]["Address"]["properties"]["zip_code"]["pattern"] == r"^\d{5}$"
    declarations = typescript(document)
    assert "export interface Customer {" in declarations
    assert "addresses?: Address[]" in declarations

    settings.WSCOMMANDS = {**settings.WSCOMMANDS, "VALIDATE_OUTGOING": True}

    @command(name="t.greet")
    async def greet(connection) -> None:
        await connection.send({"t.greeting": {"text": 5}})

    with caplog.at_level(logging.WARNING, logger="wscommands"):
        async with CommandClient() as client:
            await client.call("t.greet")
            assert await client.receive_push() == {"t.greeting": {"text": 5}}
    assert any("push 't.greeting' does not match" in r.getMessage() for r in caplog.records)


def test_without_pydantic_a_model_annotation_is_refused_at_registration(monkeypatch):
    """pydantic is optional: where it is missing, a model is one more uncheckable class."""
    monkeypatch.setattr(models, "pydantic", None)

    def f(connection, customer):
        pass

    f.__annotations__ = {"customer": Customer}
    with pytest.raises(ImproperlyConfigured, match="cannot check"):
        command(name="t.refused")(f)
