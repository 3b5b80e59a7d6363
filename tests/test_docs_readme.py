"""README.md followed word for word, as a new user would (tests/docrun.py says how): the quick
start in a copy of this repository, and the first command from ``startproject`` to a served
command (under runserver and daphne) and a passing test. Each README block belongs to one of
these sections, or is marked not runnable (tests/test_docs_blocks.py checks that)."""

from __future__ import annotations

import shutil

import pytest

from tests.docblocks import ROOT, blocks
from tests.docrun import Walk, fresh_env

pytestmark = pytest.mark.e2e

QUICK_START = "Quick start"
FIRST_COMMAND = "Your first command (ten minutes)"
#: README sections these tests follow; every other README block must be marked not runnable.
SECTIONS = (QUICK_START, FIRST_COMMAND)


def section(title: str):
    found = [b for b in blocks(ROOT / "README.md") if b.section == title and not b.not_runnable]
    assert found, f"README.md has no runnable block under {title!r}"
    return found


@pytest.mark.timeout(300)  # a copy, migrations, a server: slow on a loaded machine
def test_quick_start_serves_the_example_and_gives_a_staff_account(tmp_path):
    """``dev.py run`` in a fresh copy of the repository, the WebSocket session against it,
    then ``dev.py manage createsuperuser`` after it (development mode found by itself)."""
    copy = tmp_path / "wscommands"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "node_modules", "*.sqlite3", ".secret_key", "__pycache__",
            "staticfiles", "test-artifacts", "results", ".*_cache",
        ),
    )  # fmt: skip
    walk = Walk(copy, fresh_env())
    walk.follow(section(QUICK_START))
    assert any("Superuser created successfully" in entry for entry in walk.log), walk.log
    assert (copy / ".secret_key").exists()


@pytest.mark.timeout(300)  # a project, two servers and a pytest run
def test_first_command_from_startproject_to_a_served_command_and_a_passing_test(tmp_path):
    """A new project as the README builds it, with wscommands "installed" (on PYTHONPATH):
    its ``runserver`` and ``daphne`` answer the README's session, its test passes."""
    walk = Walk(tmp_path, fresh_env(PYTHONPATH=str(ROOT)))
    walk.follow(section(FIRST_COMMAND))
    ran = "\n".join(walk.log)
    assert "1 passed" in ran, ran
