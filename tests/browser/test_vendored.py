"""The vendored uPlot (the operations page's charts) is exactly package-lock.json's version.

`npm run vendor` copies it from node_modules into wscommands/static/wscommands/; a lock bumped
without re-vendoring, or a hand-edited copy, fails here.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.live import ROOT

STATIC = ROOT / "wscommands" / "static" / "wscommands"
VENDORED = ("dist/uPlot.iife.min.js", "dist/uPlot.min.css")


def locked_version() -> str:
    lock = json.loads((ROOT / "package-lock.json").read_text())
    return lock["packages"]["node_modules/uplot"]["version"]


def test_vendored_uplot_is_the_locked_version():
    version = locked_version()
    declared = json.loads((ROOT / "package.json").read_text())["devDependencies"]["uplot"]
    assert declared == version  # pinned exactly: the lock and the copy name one release
    header = (STATIC / "uPlot.iife.min.js").read_text()[:200]
    assert re.match(rf"/\*! \S+/uPlot \(v{re.escape(version)}\) \*/", header), header[:80]


def test_vendored_uplot_matches_node_modules():
    package = ROOT / "node_modules" / "uplot"
    if not package.is_dir():
        pytest.skip("node_modules/uplot is not installed (npm ci)")
    assert json.loads((package / "package.json").read_text())["version"] == locked_version()
    for name in VENDORED:
        copy = STATIC / name.removeprefix("dist/")
        assert copy.read_bytes() == (package / name).read_bytes(), f"{copy}: run npm run vendor"
    assert (STATIC / "uPlot.LICENSE").read_bytes() == (package / "LICENSE").read_bytes()
