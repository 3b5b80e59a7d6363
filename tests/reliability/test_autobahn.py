"""Autobahn conformance (kosoku) against daphne serving the example's echo as a raw echo.

CI runs the framing, ping, reserved-bit, opcode, fragmentation, UTF-8, close and
auto-fragmentation groups (1-7, 10); the full run (including 9.*, performance, and 12/13,
compression, which daphne does not implement) is recorded in docs/reliability.md.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.live import BIN, ROOT, base_env, free_port, wait_for_port
from tests.require import require

pytestmark = pytest.mark.e2e

APPLICATION = "tests.reliability.autobahn_asgi:application"
GROUPS = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*"]
#: daphne sends nothing for an empty message (``if message.get("text")`` in its
#: handle_reply), so cases that echo a 0-byte payload fail. wscommands never sends one.
DAPHNE_EMPTY_MESSAGE = {"1.1.1", "1.2.1", "6.1.1", "6.1.2"}
#: "Send two close frames": picows parses the second before handing over the first and
#: answers 1002 for the pair (its parser fails the read); the client expected 1000.
PICOWS_TWO_CLOSES = {"7.1.2"}


def test_autobahn_cases(tmp_path, reliability_db):
    kosoku = require("kosoku")
    env = base_env(
        DJANGO_SETTINGS_MODULE="tests.reliability.settings",
        DATABASE_URL=reliability_db["DATABASE_URL"],
        WSCOMMANDS_PRESENCE_EVENTS="0",
    )
    port = free_port()
    log = open(tmp_path / "daphne.log", "wb")  # noqa: SIM115 (closed below)
    daphne = subprocess.Popen(
        [BIN / "daphne", "-b", "127.0.0.1", "-p", str(port), APPLICATION],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for_port(port, daphne)
        args = [kosoku, "-p", "4", "-o", str(tmp_path)]
        for group in GROUPS:
            args += ["-i", group]
        subprocess.run([*args, f"127.0.0.1:{port}"], cwd=ROOT, timeout=300, check=False)
    finally:
        daphne.terminate()
        daphne.wait(15)
        log.close()
    results = next(iter(json.loads((tmp_path / "index.json").read_text()).values()))
    behaviors: dict[str, list[str]] = {}
    for case, result in results.items():
        behaviors.setdefault(result["behavior"], []).append(case)
    print({behavior: len(cases) for behavior, cases in behaviors.items()})
    assert len(results) >= 240
    assert set(behaviors.get("FAILED", [])) <= DAPHNE_EMPTY_MESSAGE
    assert all(
        results[case]["behaviorClose"] in ("OK", "INFORMATIONAL")
        for case in results
        if case not in DAPHNE_EMPTY_MESSAGE
    )


def test_autobahn_cases_on_the_engine(tmp_path, reliability_db):
    """The same groups against the engine (autobahn_engine.py): all OK (empty messages too)
    but one close code picows chooses."""
    require("picows")
    kosoku = require("kosoku")
    env = base_env(
        DJANGO_SETTINGS_MODULE="tests.reliability.settings",
        DATABASE_URL=reliability_db["DATABASE_URL"],
        WSCOMMANDS_PRESENCE_EVENTS="0",
        # Autobahn sends messages up to 64 KiB (these groups) as fast as it can.
        WSCOMMANDS_LIMITS=json.dumps(
            {"MAX_MESSAGE_SIZE": 1 << 20, "RATE_LIMIT": None, "RATE_LIMIT_BYTES": None}
        ),
    )
    port = free_port()
    log = open(tmp_path / "engine.log", "wb")  # noqa: SIM115 (closed below)
    engine = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.autobahn_engine", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for_port(port, engine)
        args = [kosoku, "-p", "4", "-o", str(tmp_path)]
        for group in GROUPS:
            args += ["-i", group]
        subprocess.run([*args, f"127.0.0.1:{port}"], cwd=ROOT, timeout=300, check=False)
    finally:
        engine.terminate()
        engine.wait(15)
        log.close()
    results = next(iter(json.loads((tmp_path / "index.json").read_text()).values()))
    behaviors: dict[str, list[str]] = {}
    for case, result in results.items():
        behaviors.setdefault(result["behavior"], []).append(case)
    print({behavior: len(cases) for behavior, cases in behaviors.items()})
    assert len(results) >= 240
    assert set(behaviors.get("FAILED", [])) <= PICOWS_TWO_CLOSES
    closes = {case: r["behaviorClose"] for case, r in results.items()}
    wrong = {c: close for c, close in closes.items() if close not in ("OK", "INFORMATIONAL")}
    assert set(wrong) <= PICOWS_TWO_CLOSES, wrong
