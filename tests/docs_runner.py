"""Run docs/*.md's Python blocks in a Django project (tests.settings), one process for all.

``python tests/docs_runner.py BLOCKS.json`` prints one JSON line per block:
``{"where": ..., "error": null | traceback}``. Each block runs as a module of its own (top-level
``await`` allowed, run in an event loop), with an empty command registry that is put back
after it, so the examples' names never collide with each other or the project's. Names:

- a block whose first line names a file (``# myapp/legacy.py``) is that module
  (``myapp.legacy``), importable by the blocks after it;
- a ``# settings.py`` block is a settings fragment: its UPPER_CASE names are applied with
  ``override_settings``, then Django's system checks must report no error, every
  ``WSCOMMANDS`` key must be known, ``COMMANDS`` must import and ``LOGGING`` must configure;
- ``user``: the one name the docs use without defining it (a User, unsaved, pk 1).
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import logging.config
import os
import sys
import traceback
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core import checks  # noqa: E402
from django.test import override_settings  # noqa: E402

from wscommands.commands.registry import Registry, load_settings_commands, registry  # noqa: E402
from wscommands.conf import wscommands_settings  # noqa: E402

SETTINGS_NAMES = {"WSCOMMANDS", "CHANNEL_LAYERS", "LOGGING", "INSTALLED_APPS", "ASGI_APPLICATION"}


def module_for(file_name: str | None, number: int) -> types.ModuleType:
    """A module for the block, registered under its file's dotted name when it names one."""
    name = file_name[: -len(".py")].replace("/", ".") if file_name else f"docs_block_{number}"
    parent = name.rpartition(".")[0]
    if parent and parent not in sys.modules:
        package = types.ModuleType(parent)
        package.__path__ = []
        sys.modules[parent] = package
    module = types.ModuleType(name)
    sys.modules[name] = module
    if parent:
        setattr(sys.modules[parent], name.rpartition(".")[2], module)
    return module


def execute(text: str, where: str, namespace: dict) -> None:
    code = compile(text, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, namespace)
    if inspect.iscoroutine(result):
        asyncio.run(result)


def check_settings(names: dict) -> None:
    settings = {name: value for name, value in names.items() if name.isupper()}
    assert settings, "a settings block that sets nothing"
    with override_settings(**settings):
        wscommands_settings.reload()
        wscommands_settings.PREFIX  # noqa: B018 (reads WSCOMMANDS: unknown keys raise)
        errors = [m for m in checks.run_checks() if m.level >= checks.ERROR]
        assert not errors, errors
        load_settings_commands(wscommands_settings.COMMANDS, into=Registry())
        if "LOGGING" in settings:
            logging.config.dictConfig(settings["LOGGING"])
    wscommands_settings.reload()


def hook_lists() -> list[list]:
    return [registry.connect_hooks, registry.disconnect_hooks, registry.join_hooks]


def run(block: dict, number: int) -> str | None:
    saved = (
        dict(registry.commands),
        dict(registry.pushes),
        [list(hooks) for hooks in hook_lists()],
    )
    registry.commands.clear()
    registry.pushes.clear()
    for hooks in hook_lists():
        hooks.clear()
    try:
        file_name = block["file_name"]
        is_settings = bool(file_name) and file_name.endswith("settings.py")
        module = module_for(None if is_settings else file_name, number)
        module.__dict__["user"] = User(pk=1, username="ann")
        execute(block["text"], block["where"], module.__dict__)
        if is_settings:
            check_settings(module.__dict__)
        else:  # settings set in a module block would go unchecked
            found = SETTINGS_NAMES & set(module.__dict__)
            assert not found, f"sets {sorted(found)}: start the block with `# settings.py`"
        return None
    except BaseException:
        return traceback.format_exc()
    finally:
        registry.commands.clear()
        registry.commands.update(saved[0])
        registry.pushes.clear()
        registry.pushes.update(saved[1])
        for hooks, before in zip(hook_lists(), saved[2], strict=True):
            hooks[:] = before
        registry.version += 1


if __name__ == "__main__":
    for number, block in enumerate(json.loads(Path(sys.argv[1]).read_text())):
        print(json.dumps({"where": block["where"], "error": run(block, number)}), flush=True)
