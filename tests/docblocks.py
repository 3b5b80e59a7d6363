"""The code blocks of README.md and docs/*.md, as tests/test_docs_*.py run them.

A block is fenced (```` ```lang ````, indented or not); an indented code block cannot say what
it is, so the tests refuse it. A block the tests cannot run says why, in an HTML comment right
before its fence: ``<!-- not-runnable: needs Redis and PostgreSQL -->``.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)(?P<info>[^`]*)$")
_NOT_RUNNABLE = re.compile(r"^\s*<!--\s*not-runnable:(?P<reason>.*?)-->\s*$")
_HEADING = re.compile(r"^(#{1,6}) (?P<title>.+)$")


@dataclass
class Block:
    """One fenced block: where it is, its language, its text (dedented), its marking."""

    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    section: str  # the nearest heading above it
    not_runnable: str | None  # the reason, when marked

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def first_line(self) -> str:
        return self.text.splitlines()[0] if self.text.strip() else ""

    @property
    def file_name(self) -> str | None:
        """The file a block is, or is added to, when its first line says so:
        ``# mysite/asgi.py`` (the whole file) or ``# mysite/settings.py, at the end``."""
        match = re.match(r"^#\s+([\w./-]+\.(?:py|ini|toml|cfg))\b", self.first_line)
        return match.group(1) if match else None


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of one Markdown file, in order."""
    lines = path.read_text().splitlines()
    found: list[Block] = []
    section = ""
    index = 0
    while index < len(lines):
        line = lines[index]
        heading = _HEADING.match(line)
        if heading:
            section = heading.group("title")
        fence = _FENCE.match(line)
        if not fence:
            index += 1
            continue
        indent, marker = len(fence.group("indent")), fence.group("fence")
        end = index + 1
        while end < len(lines) and lines[end].strip() != marker:
            end += 1
        body = "\n".join(text[indent:] for text in lines[index + 1 : end])
        previous = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        marked = _NOT_RUNNABLE.match(previous)
        found.append(
            Block(
                path=path,
                line=index + 1,
                lang=fence.group("info").strip().split(" ")[0],
                text=textwrap.dedent(body).strip("\n") + "\n",
                section=section,
                not_runnable=marked.group("reason").strip() if marked else None,
            )
        )
        index = end + 1
    return found


def indented_code(path: Path) -> list[int]:
    """Lines that start an indented code block (four spaces after a blank line, outside a
    fence and a list): such a block cannot be marked, so it must become a fenced one."""
    lines = path.read_text().splitlines()
    starts, in_fence, in_list = [], False, False
    for number, line in enumerate(lines, 1):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        if re.match(r"^\s*([-*+]|\d+\.) ", line):
            in_list = True
        elif line and not line.startswith(" "):
            in_list = False
        previous = lines[number - 2] if number > 1 else ""
        if not in_list and not previous.strip() and re.match(r"^ {4,}\S", line):
            starts.append(number)
    return starts


def all_blocks() -> list[Block]:
    return [block for path in DOCUMENTS for block in blocks(path)]
