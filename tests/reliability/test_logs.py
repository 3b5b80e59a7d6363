"""Logs proportional to the attack: one line per event kind and connection, never a flood.

Issue 10's table: a 401-digit integer sent to ``div`` logged an OverflowError traceback,
twice (two handlers), for every frame: 1.5 MB/s of log from one socket.
"""

from __future__ import annotations

import json

import pytest
from websockets.asyncio.client import connect

from tests.live import SERVERS

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("kind", SERVERS, indirect=True)]

HUGE = 10**400  # 401 digits: more than a float can hold


async def requests(ws, bodies: list[dict]) -> list[dict]:
    """Send every request at once (pipelined), then read their replies in order."""
    for i, body in enumerate(bodies):
        await ws.send(json.dumps({**body, "request_id": i}))
    replies = [json.loads(await ws.recv()) for _ in bodies]
    assert [r["request_id"] for r in replies] == list(range(len(bodies)))
    return replies


async def test_huge_integer_to_div_is_a_client_error_logged_without_traceback(live, kind):
    """200 ``div`` calls with a 401-digit integer: invalid_arguments each, no traceback logged.

    The server process's whole log stays a few lines: nothing is printed per frame.
    """
    server = live(kind=kind)
    before = len(server.log())
    async with connect(server.ws) as ws:
        replies = await requests(ws, [{"div": {"a": HUGE, "b": 3}}] * 200)
        assert (await requests(ws, [{"echo": {"text": "after"}}]))[0]["echo"] == {"text": "after"}
    for reply in replies:
        error = reply["errors"]["div"]
        assert error["code"] == "invalid_arguments", reply
        assert "a" in error["details"]["invalid"]  # the argument that was out of range
    log = server.log()[before:]
    assert "Traceback" not in log
    assert "OverflowError" not in log
    assert len(log.encode()) < 2_000, log


async def test_a_bug_a_client_can_trigger_is_logged_once_per_connection(live, kind):
    """300 calls of a command that raises: one ERROR with traceback, not 300 (nor 600)."""
    server = live(kind=kind)
    before = len(server.log())
    async with connect(server.ws) as ws:
        replies = await requests(ws, [{"probe.bug": {}}] * 300)
    assert {r["errors"]["probe.bug"]["code"] for r in replies} == {"command_failed"}
    log = server.log()[before:]
    assert log.count("Traceback") == 1, log
    assert log.count("RuntimeError: probe bug") == 1, log
    line = next(line for line in log.splitlines() if "'probe.bug' raised" in line)
    assert "ERROR wscommands.command" in line
    assert "anonymous" in line  # the record carries the connection's user...
    assert "~" in line  # ...and its connection id (process channel ~ local id)


async def test_refused_frames_logged_at_info_once_per_connection(live, kind):
    """100 frames that are not JSON: one INFO line without a traceback, printed once."""
    server = live(kind=kind, MAX_INVALID_FRAMES=1000)
    before = len(server.log())
    async with connect(server.ws) as ws:
        for _ in range(100):
            await ws.send("not json")
        for _ in range(100):
            assert json.loads(await ws.recv())["errors"]["request"]["code"] == "invalid_json"
    log = server.log()[before:]
    lines = [line for line in log.splitlines() if "invalid frame refused" in line]
    assert len(lines) == 1, log
    assert " INFO wscommands.connection " in lines[0]
    assert "Traceback" not in log


async def test_json_lines(live, kind):
    """WSCOMMANDS_LOG_JSON=1: the bug is one JSON line with the connection, user and traceback."""
    server = live(env={"WSCOMMANDS_LOG_JSON": "1"}, kind=kind)
    before = len(server.log())
    async with connect(server.ws) as ws:
        await requests(ws, [{"probe.bug": {}}] * 5)
    records = [
        json.loads(line) for line in server.log()[before:].splitlines() if line.startswith("{")
    ]
    bugs = [r for r in records if r["logger"] == "wscommands.command"]
    assert len(bugs) == 1, records
    assert bugs[0]["level"] == "ERROR"
    assert bugs[0]["user"] == "anonymous"
    assert "~" in bugs[0]["connection_id"]
    assert "RuntimeError: probe bug" in bugs[0]["exc"]
