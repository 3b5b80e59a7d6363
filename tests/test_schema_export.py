"""docs/client.md, Typed calls; docs/api.md, Describing the API: ``manage.py wscommands_schema``.

The AsyncAPI 3.0 document is validated against the official JSON Schema (npm
``@asyncapi/specs``); the TypeScript declarations are compiled by ``tsc --strict`` with a
program that uses them right, and with programs that do not (the compiler must refuse them).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Literal, TypedDict

import jsonschema
import msgspec
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.testapp.helpers import scratch_registry
from wscommands import Command, Registry, command, declare_push, registry
from wscommands.schema.document import api_document

CLIENT_DTS = Path(__file__).resolve().parent.parent / "wscommands/static/wscommands/wscommands.d.ts"


class OrderLine(msgspec.Struct):
    sku: str
    qty: int


class Receipt(TypedDict):
    lines: int
    shipping: Literal["fast", "cheap"]


class Tick(msgspec.Struct):
    """Sent every second."""

    n: int
    at: str | None = None


@pytest.fixture(autouse=True)
def _typed_commands():
    with scratch_registry():

        @command(name="t.add")
        def add(connection, a: int, b: int) -> int:
            return a + b

        @command(name="t.order")
        def order(
            connection, lines: list[OrderLine], shipping: Literal["fast", "cheap"] = "cheap"
        ) -> Receipt:
            return {"lines": len(lines), "shipping": shipping}

        @command(name="t.pair")
        def pair(connection, point: tuple[int, str], tags: dict[str, list[float]] | None = None):
            return None

        @command(name="t.nothing")
        async def nothing(connection) -> None:
            pass

        declare_push("t.tick")(Tick)  # the decorator form, on a class
        yield


def _tsc(node_modules: Path, directory: Path, program: str) -> subprocess.CompletedProcess:
    """Compile ``program`` (main.ts) with the generated api.d.ts under ``tsc --strict``."""
    (directory / "main.ts").write_text(program)
    config = {
        "compilerOptions": {
            "strict": True,
            "noEmit": True,
            "target": "es2022",
            "module": "esnext",
            "moduleResolution": "bundler",
            "lib": ["es2022", "dom"],
            "paths": {"wscommands": [str(CLIENT_DTS)]},
            "types": [],
        },
        "files": ["main.ts", "api.d.ts"],
    }
    (directory / "tsconfig.json").write_text(json.dumps(config))
    return subprocess.run(
        [str(node_modules / ".bin" / "tsc"), "-p", str(directory / "tsconfig.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )


HEADER = """import { WSCommands } from "wscommands";
import type { Commands, Pushes, SchemaHash } from "./api";
const client = new WSCommands<Commands, Pushes>("ws://localhost/ws/", { autoConnect: false });
"""


def test_the_typescript_compiles_and_types_calls_results_and_pushes(node_modules, tmp_path):
    """Right use compiles under --strict; results and push values have the declared types."""
    call_command("wscommands_schema", typescript=str(tmp_path / "api.d.ts"))
    program = (
        HEADER
        + """
async function main(): Promise<void> {
  const sum: number = await client.call("t.add", { a: 1, b: 2 });
  const receipt = await client.call("t.order", { lines: [{ sku: "x", qty: 2 }] });
  const shipping: "fast" | "cheap" = receipt.shipping;
  await client.call("t.order", { lines: [], shipping: "fast" });
  await client.call("t.order", [{ sku: "x", qty: 2 }]);  // the first parameter alone
  await client.call("t.pair", { point: [1, "a"], tags: { x: [1.5] } });
  const none: undefined = await client.call("t.nothing");
  await client.call("echo", "hi");
  const reply = await client.request({ "t.add": { a: 1, b: 2 }, "t.nothing": null });
  const maybe: number | undefined = reply["t.add"];
  client.on("t.tick", (tick) => {
    const n: number = tick.n;
    const at: string | null | undefined = tick.at;
  });
  const hash: SchemaHash = "HASH";
  console.log(sum, shipping, none, maybe, hash);
}
main();
"""
    ).replace("HASH", api_document(registry)["hash"])
    result = _tsc(node_modules, tmp_path, program)
    assert result.returncode == 0, result.stdout + result.stderr


WRONG = [
    # (a wrong line, the error tsc must report on that line)
    (
        'client.call("t.add", { a: "1", b: 2 });',
        "Type 'string' is not assignable to type 'number'.",
    ),
    ('client.call("t.add", { a: 1 });', "Property 'b' is missing"),
    ('client.call("t.add");', "Expected 2-3 arguments, but got 1."),
    (
        'client.call("t.add", { a: 1, b: 2, c: 3 });',
        "Object literal may only specify known properties, and 'c' does not exist",
    ),
    (
        'client.call("t.addd", { a: 1, b: 2 });',
        "Argument of type '\"t.addd\"' is not assignable to parameter of type",
    ),
    (
        'client.call("t.order", { lines: [{ sku: "x", qty: 1 }], shipping: "slow" });',
        'Type \'"slow"\' is not assignable to type \'"cheap" | "fast" | undefined\'.',
    ),
    (
        'client.call("t.order", { lines: [{ sku: "x", qty: "1" }] });',
        "Type 'string' is not assignable to type 'number'.",
    ),
    (
        'client.call("t.add", { a: 1, b: 2 }).then((s: string) => s);',
        "Type 'number' is not assignable to type 'string'.",
    ),
    ('client.on("t.tick", (tick) => tick.when);', "Property 'when' does not exist on type 'Tick'."),
    ('client.on("t.tock", () => 0);', "Argument of type '\"t.tock\"' is not assignable"),
    ('client.request({ "t.nope": 1 });', "'\"t.nope\"' does not exist in type"),
    (
        'client.request({ "t.add": { a: 1, b: "2" } });',
        "Type 'string' is not assignable to type 'number'.",
    ),
]


def test_tsc_refuses_wrong_calls_each_at_its_line(node_modules, tmp_path):
    """A wrong argument, command name, result use or push field is a compile error there."""
    call_command("wscommands_schema", typescript=str(tmp_path / "api.d.ts"))
    result = _tsc(node_modules, tmp_path, HEADER + "\n".join(line for line, _ in WRONG) + "\n")
    assert result.returncode != 0
    reported: dict[int, str] = {}
    for line in result.stdout.splitlines():
        if "main.ts(" in line:
            number = int(line.split("main.ts(")[1].split(",")[0])
            reported[number] = reported.get(number, "") + line
        elif reported:  # a continuation of the previous error
            reported[max(reported)] += line
    first = HEADER.count("\n") + 1
    for offset, (line, error) in enumerate(WRONG):
        assert error in reported.get(first + offset, ""), (line, result.stdout)
    assert set(reported) == set(range(first, first + len(WRONG))), result.stdout


def test_the_asyncapi_document_is_valid_against_the_official_schema(node_modules, tmp_path):
    """Commands are receive operations with replies, pushes send operations; the official
    AsyncAPI 3.0.0 JSON Schema accepts the document and refuses a broken one."""
    path = tmp_path / "asyncapi.json"
    call_command("wscommands_schema", asyncapi=str(path), title="Test API")
    document = json.loads(path.read_text())
    schema_path = node_modules / "@asyncapi" / "specs" / "schemas" / "3.0.0-without-$id.json"
    validator = jsonschema.Draft7Validator(json.loads(schema_path.read_text()))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == []

    add = document["operations"]["t.add"]
    assert add["action"] == "receive"
    assert add["reply"]["messages"] == [{"$ref": "#/channels/ws/messages/t.add.reply"}]
    request = document["channels"]["ws"]["messages"]["t.add.request"]["payload"]
    assert request["properties"]["t.add"] == {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
        "additionalProperties": False,
    }
    reply = document["channels"]["ws"]["messages"]["t.add.reply"]["payload"]
    assert reply["properties"]["t.add"] == {"type": "integer"}
    tick = document["operations"]["push.t.tick"]
    assert tick["action"] == "send" and tick["summary"] == "Sent every second."
    assert document["components"]["schemas"]["OrderLine"]["properties"]["qty"] == {
        "type": "integer"
    }
    order = document["channels"]["ws"]["messages"]["t.order.request"]["payload"]
    assert "#/components/schemas/OrderLine" in json.dumps(order)

    document["operations"]["t.add"]["action"] = "publish"  # AsyncAPI 2's word: not valid in 3
    assert list(validator.iter_errors(document))


def test_check_fails_when_a_generated_file_is_out_of_date(tmp_path):
    """--check writes nothing and fails when the committed files no longer match."""
    target = tmp_path / "api.d.ts"
    call_command("wscommands_schema", typescript=str(target))
    call_command("wscommands_schema", typescript=str(target), check=True)

    @command(name="t.more")
    def more(connection) -> int:
        return 1

    with pytest.raises(CommandError, match="out of date"):
        call_command("wscommands_schema", typescript=str(target), check=True)


#: A registry of its own, as a consumer subclass would serve (``--registry``).
OTHER = Registry()


def only(connection, x: int) -> int:
    return x


OTHER.register(Command(name="only", func=only))


def test_registry_option_describes_another_registry(tmp_path):
    """--registry names a Registry (or a consumer class with one): only its commands."""
    target = tmp_path / "api.d.ts"
    call_command("wscommands_schema", typescript=str(target), registry=f"{__name__}.OTHER")
    text = target.read_text()
    assert "  only: {" in text and "t.add" not in text
    with pytest.raises(CommandError, match="neither a Registry"):
        call_command("wscommands_schema", registry=f"{__name__}.HEADER")
