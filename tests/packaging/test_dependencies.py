"""Every third-party import in wscommands/ is declared in pyproject.toml, as what it is.

An import a module makes when it loads must come from ``dependencies`` (a package installed
only through another one's dependencies counts as undeclared); an optional one (inside
``try: ... except ImportError`` or a function) from an extra. Read from the source, so it
also catches what the installed wheel (test_wheel.py) would hide behind a transitive install.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterator

from tests.require import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group()).lower()


REQUIRED = {_name(r) for r in PROJECT["dependencies"]}
EXTRAS = {_name(r) for rs in PROJECT["optional-dependencies"].values() for r in rs}
# The extra ``daphne`` is ``channels[daphne]``: the daphne it pulls counts as named.
EXTRAS.add("daphne")


def _catches_import_error(node: ast.Try) -> bool:
    names = {
        n.id
        for handler in node.handlers
        if handler.type is not None
        for n in ast.walk(handler.type)
        if isinstance(n, ast.Name)
    }
    return bool(names & {"ImportError", "ModuleNotFoundError"})


def _imports(body: list[ast.stmt], optional: bool) -> Iterator[tuple[str, bool]]:
    """(top-level module, optional) for each absolute import under ``body``."""
    for node in body:
        if isinstance(node, ast.Import):
            yield from ((alias.name.partition(".")[0], optional) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.partition(".")[0], optional
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue  # read by type checkers only
        elif isinstance(node, ast.With) and "suppress(ImportError)" in ast.unparse(node.items[0]):
            yield from _imports(node.body, True)  # contextlib.suppress(ImportError)
        elif isinstance(node, ast.Try):
            guarded = optional or _catches_import_error(node)
            yield from _imports(node.body, guarded)
            for part in (node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from _imports(part, optional)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield from _imports(node.body, True)  # imported when called
        else:
            for field in ("body", "orelse", "finalbody"):
                inner = getattr(node, field, None)
                if isinstance(inner, list):
                    yield from _imports(inner, optional)


def _third_party() -> dict[str, bool]:
    """Each third-party module wscommands imports -> whether every import of it is optional."""
    found: dict[str, bool] = {}
    for path in sorted((ROOT / "wscommands").rglob("*.py")):
        for module, optional in _imports(ast.parse(path.read_text()).body, False):
            if module in sys.stdlib_module_names or module in ("wscommands", "__future__"):
                continue
            found[module] = found.get(module, True) and optional
    return found


def test_every_third_party_import_is_a_declared_dependency_or_extra() -> None:
    distributions = importlib.metadata.packages_distributions()
    undeclared = {}
    for module, optional in _third_party().items():
        names = {_name(d) for d in distributions.get(module, [module])}
        allowed = REQUIRED | EXTRAS if optional else REQUIRED
        if not names & allowed:
            undeclared[module] = "optional" if optional else "imported when a module loads"
    assert undeclared == {}


def test_the_finder_sees_the_known_imports() -> None:
    # Guards the walker itself: msgspec at module top, redis and pydantic behind ImportError.
    found = _third_party()
    assert found["msgspec"] is False and found["django"] is False
    assert found["redis"] is True and found["pydantic"] is True
    assert found["prometheus_client"] is True and found["opentelemetry"] is True
