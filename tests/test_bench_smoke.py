"""The benchmark suite (bench/) in its tiny mode, so its code cannot rot unnoticed.

Every scenario runs with a handful of clients and one round against real daphne and uvicorn
processes and Redis; the test checks the figures are sane (every client got its replies and
broadcasts, every connection succeeded), never how fast anything was. The Socket.IO anchors
(bench/anchors/) take part in the echo and broadcast scenarios; one not installed fails the
test in CI and skips it elsewhere, once everything else has been checked.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.live import ROOT
from tests.require import missing, require

pytestmark = [pytest.mark.e2e, pytest.mark.redis]


@pytest.fixture(scope="module")
def bench_requirements() -> None:
    require("picows")  # the benchmark's client


@pytest.mark.timeout(380)  # fourteen scenarios, each starting its own servers, on a shared machine
def test_tiny_suite_runs_every_scenario(bench_requirements, redis_url, tmp_path):
    figures_path = tmp_path / "figures.json"
    args = ["--tiny", "--no-plot", "--redis-url", redis_url, "--out", str(tmp_path)]
    result = subprocess.run(
        [sys.executable, "-m", "bench", *args, "--json", str(figures_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=370,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(figures_path.read_text())["results"]
    apps = ("wscommands", "baseline")

    echo_apps = {"daphne": apps, "uvicorn": apps, "engine": ("wscommands", "raw picows")}
    for kind, kind_apps in echo_apps.items():
        for app in kind_apps:
            echo = figures["echo"][kind][app]
            assert echo["clients"] == 4 and not echo["connect_failures"], (kind, app, echo)
            assert echo["errors"] == 0 and echo["min_replies_per_client"] >= 1, (kind, app)
    for app, sizes in figures["broadcast_engine"].items():
        for size, entry in sizes.items():
            assert entry["missed"] == 0 and entry["duplicates"] == 0, (app, size, entry)
    idle = figures["idle"]
    assert idle["opened"] == idle["measured"] == 40 and idle["failures"] == 0, idle
    assert [point["open"] for point in idle["points"]] == [10, 40], idle
    # wscommands under uvicorn broadcasts in the same rounds, under a prefix of its own: no
    # client has a push of another app's rounds (strays).
    for app in (*apps, "wscommands-uvicorn"):
        for size, entry in figures["broadcast"][app].items():
            assert entry["missed"] == 0 and entry["duplicates"] == 0, (app, size, entry)
            assert entry["strays"] == 0, (app, size, entry)
            assert all(r["ms_to_last"] is not None for r in entry["rounds"]), (app, size)
    for app in apps:
        memory = figures["memory"][app]["rounds"][0]
        assert memory["connected"] == 20 and memory["failures"] == 0, (app, memory)
        assert figures["slow"][app]["rounds"][0]["requests_during"] >= 1, app
        burst = figures["burst"][app]
        assert burst["failed"] == 0 and burst["rounds"][0]["connected"] == 30, (app, burst)

    typed = figures["typed"]
    assert typed["clients"] == 4 and not typed["connect_failures"] and typed["errors"] == 0
    for command in ("echo", "echo.typed"):
        assert all(r["replies"] >= 4 for r in typed["commands"][command]["rounds"]), command

    for name in ("metrics on", "metrics off"):
        echo = figures["metrics"][name]
        assert echo["clients"] == 4 and echo["errors"] == 0, (name, echo)
        assert echo["min_replies_per_client"] >= 1, name

    for variant, sizes in figures["fanout"].items():
        for size, entry in sizes.items():
            assert entry["missed"] == 0 and entry["duplicates"] == 0, (variant, size, entry)
            assert all(r["ms_to_first"] is not None for r in entry["rounds"]), (variant, size)
    resumed = figures["resume"]["rounds"][0]
    assert resumed["recovered"] is True and resumed["replayed"] == 20, resumed

    # The latencies: every round saw the event (how fast is the report's business, not ours).
    crashed = figures["crash-leave"]
    assert crashed["missed"] == 0 and crashed["rounds"][0]["left"] == crashed["users"], crashed
    for how, ended in figures["logout-close"]["ends"].items():
        assert ended["missed"] == 0, (how, ended)
        assert all(r["codes"] == ["4401"] for r in ended["rounds"]), (how, ended)

    # The replay flood: 108 asks for the same 500 pushes send each push once (a reply each,
    # 500 pushes at most), and the bystander kept being answered.
    flood = figures["replay-flood"]
    asks, back = map(
        int, re.match(r"(\d+) resumes brought back (\d+) frames", flood["attack"]).groups()
    )
    assert asks == 108 and back <= asks + 500, flood
    assert flood["samples"] > 0, flood

    absent = figures["anchors"]["missing"]
    for anchor in ("python-socketio", "node-socketio"):
        if anchor in absent:
            continue
        echo = figures["echo"]["uvicorn"][anchor]
        assert echo["clients"] == 4 and not echo["connect_failures"], (anchor, echo)
        assert echo["errors"] == 0 and echo["min_replies_per_client"] >= 1, (anchor, echo)
        for size, entry in figures["broadcast"][anchor].items():
            assert entry["missed"] == 0 and entry["duplicates"] == 0, (anchor, size, entry)
            assert all(r["ms_to_last"] is not None for r in entry["rounds"]), (anchor, size)

    report = (tmp_path / "benchmarks.md").read_text()
    headings = (
        "## Targets",
        "## Echo round trip",
        "## Typed arguments",
        "## Broadcast",
        "## Idle memory",
        "## Echo with",
        "## Fan-out with stream history",
        "## Resume after missed pushes",
        "## Leave after a crash",
        "## Close after a logout or a deleted session",
        "### Against Socket.IO",
        "### The engine against the raw picows floor",
        "## Idle connections on one engine process",
        "## Replay flood, one daphne",
    )
    for heading in headings:
        assert heading in report
    assert "| wscommands, 2 uvicorn + Redis | 12 |" in report
    if absent:
        missing("benchmark anchors not installed: " + "; ".join(absent.values()))
