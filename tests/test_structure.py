"""docs/architecture.md: the package's import graph has no cycles and no module reaches into
another's private names; each module imports alone; the close codes are one table."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.live import ROOT, base_env
from wscommands.wire.codes import CLOSE_CODES, CloseCode

PACKAGE = ROOT / "wscommands"
#: The one package allowed to use other packages' private names (it fences them).
FENCE = "wscommands._internal.compat"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _in_type_checking(node: ast.AST, parents: list[ast.AST]) -> bool:
    return any(isinstance(p, ast.If) and "TYPE_CHECKING" in ast.unparse(p.test) for p in parents)


def imports_of(name: str, annotations: bool = True) -> dict[str, list[ast.AST]]:
    """The package modules ``name`` imports -> the enclosing nodes; ``annotations=False``
    leaves out the imports made only for type hints (under ``TYPE_CHECKING``)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[str, list[ast.AST]] = {}
    stack: list[tuple[ast.AST, list[ast.AST]]] = [(ast.parse(path.read_text()), [])]
    while stack:
        node, parents = stack.pop()
        stack.extend((child, [*parents, node]) for child in ast.iter_child_nodes(node))
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if not annotations and _in_type_checking(node, parents):
            continue
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            targets = [
                f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target
                for a in node.names
            ]
        else:
            targets = [a.name for a in node.names]
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.setdefault(target, parents)
    return found


#: The packages from the bottom up (docs/architecture.md): each imports only those before it
#: (and itself). The top-level modules (Django glue, public names, re-exports) may import all.
LAYERS = [
    "conf",
    "observability",
    "wire",
    "_internal",
    "backends",
    "commands",
    "schema",
    "streams",
    "delivery",
    "presence",
    "ops",
    "hub",
    "guards",
    "connection",
    "server",
    "engine",
]
TOP_LEVEL = {
    "wscommands",
    "wscommands.apps",
    *(m for m in MODULES if m == "wscommands.checks" or m.startswith("wscommands.checks.")),
    "wscommands.urls",
    "wscommands.routing",
    "wscommands.views",
    "wscommands.testing",
    *(m for m in MODULES if m.startswith("wscommands.management")),
    # documented older paths, kept as re-exports (CHANGELOG.md)
    "wscommands.origins",
    "wscommands.logs",
    "wscommands.prometheus",
    "wscommands.tracing",
}


#: Modules of constants that import nothing at all: below every layer, so any may use them
#: (wire/codes.py: the wire's constants, which metrics labels by).
CONSTANTS = {"wscommands.wire.codes"}


def layer_of(module: str) -> int:
    return -1 if module in CONSTANTS else LAYERS.index(module.split(".")[1])


def test_modules_of_constants_import_nothing():
    """What every layer may import must not pull anything in, not even a third-party module."""
    for name in CONSTANTS:
        tree = ast.parse(MODULES[name].read_text())
        imports = [
            ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)
        ]
        assert imports == ["from __future__ import annotations"], name


def test_every_module_belongs_to_a_layer_or_the_top_level():
    assert [m for m in MODULES if m not in TOP_LEVEL and m.split(".")[1] not in LAYERS] == []


def test_layers_point_down_annotations_included():
    """A package imports only the packages below it, even for a type hint (a Protocol in the
    lower package instead)."""
    upward = [
        f"{name} -> {target}"
        for name in MODULES
        if name not in TOP_LEVEL
        for target in imports_of(name)
        if target not in TOP_LEVEL and layer_of(target) > layer_of(name)
    ]
    assert upward == []
    assert [
        f"{n} -> {t}"
        for n in MODULES
        if n not in TOP_LEVEL
        for t in imports_of(n)
        if t in TOP_LEVEL
    ] == []


def test_each_package_says_what_it_holds_and_may_import():
    """Each package's ``__init__`` docstring names what it may import (its layer)."""
    for package in LAYERS[1:]:
        doc = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text()))
        assert doc and "May import:" in doc, package


def test_no_module_over_300_lines():
    """A file past a few hundred lines holds two jobs."""
    long = {n: len(p.read_text().splitlines()) for n, p in MODULES.items()}
    assert {n: lines for n, lines in long.items() if lines > 300} == {}


def test_the_import_graph_has_no_cycles():
    """A module that imports one that (indirectly) imports it back fails here, naming the loop,
    counting the imports made for type hints."""
    graph = {name: set(imports_of(name)) for name in MODULES}

    def path_back(start: str) -> list[str] | None:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    return [*path, start]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
        return None

    cycles = [" -> ".join(cycle) for name in MODULES if (cycle := path_back(name))]
    assert cycles == []


def test_no_package_import_inside_a_function():
    """Imports inside functions are how cycles hide; only AppConfig.ready may (Django's way)."""
    late = []
    for name in MODULES:
        for target, parents in imports_of(name).items():
            functions = [
                p for p in parents if isinstance(p, ast.FunctionDef | ast.AsyncFunctionDef)
            ]
            if functions and not (name == "wscommands.apps" and functions[0].name == "ready"):
                late.append(f"{name} imports {target} in {functions[-1].name}()")
    assert late == []


def test_no_module_uses_another_modules_private_names():
    """``other._name`` only where ``_name`` is this module's own; compat is the one fence."""
    reaches = []
    for name, path in MODULES.items():
        if name == FENCE or name.startswith(f"{FENCE}."):
            continue
        tree = ast.parse(path.read_text())
        own = {
            node.name
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        } | {
            target.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign)
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(target, ast.Attribute)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and re.match(r"_[a-zA-Z]", node.attr)
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
                and node.attr not in own
            ):
                reaches.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert reaches == []


#: Imports each module first, in a fresh set of package modules (third-party ones stay loaded,
#: which keeps it to one interpreter): an ImportError from a partly initialised module is a
#: cycle that only some import orders hit.
IMPORT_EACH_ALONE = """
import importlib, json, sys, traceback
failures = {}
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "wscommands" or m.startswith("wscommands.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failures[name] = traceback.format_exc()
print(json.dumps(failures))
"""


def test_each_module_imports_alone_in_a_fresh_interpreter():
    """Each module of the package imports first, without Django set up, and without error."""
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH_ALONE, *MODULES],
        cwd=ROOT,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {}


def test_the_close_codes_are_one_table_matching_the_protocol_document():
    """docs/protocol.md's table lists exactly codes.CLOSE_CODES; the constants are in it."""
    text = (ROOT / "docs" / "protocol.md").read_text()
    section = text.split("## Close codes", 1)[1].split("\n## ", 1)[0]
    documented = {int(code) for code in re.findall(r"^\| (\d{4}) \|", section, re.MULTILINE)}
    assert documented == set(CLOSE_CODES)
    constants = {v for k, v in vars(CloseCode).items() if k.isupper()}
    assert constants == set(CLOSE_CODES)
    assert all(type(code) is int for code in constants)  # autobahn wants exactly int


@pytest.mark.parametrize("name", ["limits", "caps", "flow", "shutdown"])
def test_guards_do_not_reach_the_consumer(name):
    """Guards decide and return; only the consumer (and the life cycle) act on a connection."""
    assert "wscommands.server.consumer" not in imports_of(f"wscommands.guards.{name}")
    assert "wscommands.connection.connection" not in imports_of(f"wscommands.guards.{name}")
