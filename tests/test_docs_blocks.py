"""Every code block of README.md and docs/*.md is run, or says why it cannot be.

README.md's blocks are followed by tests/test_docs_readme.py (its quick start and first
command); docs/*.md's Python blocks run in tests/docs_runner.py, their JSON blocks must parse.
Anything else is marked ``<!-- not-runnable: reason -->`` right before its fence
(tests/docblocks.py), so a new unmarked block, or a snippet that stops working, fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.docblocks import DOCUMENTS, ROOT, Block, all_blocks, indented_code
from tests.live import base_env
from tests.test_docs_readme import SECTIONS

RUNNABLE_IN_DOCS = ("python", "json")


def runnable(block: Block) -> bool:
    return not block.not_runnable


def test_no_indented_code_blocks():
    """An indented block cannot carry a language or a not-runnable mark: fence it."""
    found = {path.name: lines for path in DOCUMENTS if (lines := indented_code(path))}
    assert not found, f"indented code blocks (make them fenced blocks): {found}"


def test_every_block_is_run_or_marked_not_runnable_with_a_reason():
    unhandled = []
    for block in all_blocks():
        if block.not_runnable is not None:
            if not block.not_runnable:
                unhandled.append(f"{block.where}: not-runnable without a reason")
            continue
        if block.path.name == "README.md":
            handled = block.section in SECTIONS
        else:
            handled = block.lang in RUNNABLE_IN_DOCS
        if not handled:
            unhandled.append(f"{block.where} ({block.lang or 'no language'}, {block.section})")
    assert not unhandled, (
        "blocks no test runs: make them runnable, or mark them "
        "<!-- not-runnable: reason --> right before the fence:\n" + "\n".join(unhandled)
    )


def docs_blocks(lang: str) -> list[Block]:
    return [
        block
        for block in all_blocks()
        if block.path.name != "README.md" and block.lang == lang and runnable(block)
    ]


@pytest.mark.parametrize("block", docs_blocks("json"), ids=lambda block: block.where)
def test_json_blocks_are_json(block):
    json.loads(block.text)


@pytest.mark.e2e
def test_python_blocks_run(tmp_path):
    python = docs_blocks("python")
    assert python
    source = tmp_path / "blocks.json"
    source.write_text(
        json.dumps([{"where": b.where, "text": b.text, "file_name": b.file_name} for b in python])
    )
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "docs_runner.py"), str(source)],
        cwd=tmp_path,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    reports = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [report["where"] for report in reports] == [b.where for b in python], result.stderr
    failed = [f"{r['where']}:\n{r['error']}" for r in reports if r["error"]]
    assert not failed, "\n".join(failed)
