"""The client in a real browser: errors, the classic script, authenticate, the heartbeat."""

from __future__ import annotations

import signal

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

OUTCOME = """
window.outcome = async (promise) => {
  try {
    return { result: await promise };
  } catch (e) {
    return { name: e.name, code: e.code, message: e.message, details: e.details ?? null,
             command: e.command ?? null };
  }
};
"""


@pytest.mark.redis
def test_call_rejects_with_the_protocols_error(cluster, demo_pages):
    """call() rejects with the errors entry's code, message and details; request() resolves."""
    guest = demo_pages(cluster[0]).open()
    guest.page.evaluate(OUTCOME)
    got = guest.page.evaluate(
        """async () => {
        const c = demo.client;
        return {
          missing: await outcome(c.call("div", { a: 1 })),
          wrongType: await outcome(c.call("div", { a: 1, b: "x" })),
          clientError: await outcome(c.call("div", { a: 1, b: 0 })),
          unknown: await outcome(c.call("no.such.command")),
          anonymous: await outcome(c.call("chat.say", { room: "lobby", text: "hi" })),
          refused: await outcome(c.call("errors")),
          timeout: await outcome(c.call("sleep", { seconds: 1 }, { timeout: 50 })),
          ok: await outcome(c.call("div", { a: 1, b: 4 })),
          whole: await c.request({ square: 3, div: { a: 1 } }),
        };
    }"""
    )
    assert got["missing"] == {
        "name": "WSCommandsError",
        "code": "invalid_arguments",
        "message": "missing argument: b",
        "details": {"missing": ["b"]},
        "command": "div",
    }
    assert got["wrongType"]["details"] == {"wrong_type": {"b": "float"}}
    assert got["clientError"]["code"] == "client_error"
    assert got["clientError"]["message"] == "division by zero"
    assert got["unknown"]["code"] == "unknown_command"
    assert got["anonymous"]["code"] == "not_authenticated"
    assert got["refused"]["code"] == "invalid_request"
    assert got["timeout"]["code"] == "timeout"
    assert got["ok"] == {"result": 0.25}
    assert got["whole"]["square"] == 9
    assert got["whole"]["errors"]["div"]["details"] == {"missing": ["b"]}


@pytest.mark.redis
def test_classic_script_and_the_session_id_flow(cluster, demo_pages):
    """window.WSCommands from the classic script authenticates with /session_id; a guest fails."""
    ann = demo_pages(cluster[0]).sign_up("ann").open()
    ann.page.add_script_tag(url="/static/wscommands/wscommands.classic.js")
    got = ann.page.evaluate(
        """async () => {
        const c = new window.WSCommands({ authenticate: "session_id" });
        await c.connect();
        const out = { user: c.user, authed: c.is_authenticated(), who: await c.call("whoami") };
        c.close();
        return out;
    }"""
    )
    assert got["user"]["username"] == ann.username
    assert got["authed"] is True
    assert got["who"]["username"] == ann.username

    guest = demo_pages(cluster[0]).open()
    got = guest.page.evaluate(
        """async () => {
        const { WSCommands } = await import("/static/wscommands/wscommands.js");
        const c = new WSCommands({ authenticate: "session_id" });
        const closes = [];
        c.onclose((info) => closes.push(info));
        try {
          await c.connect();
          return "connected";
        } catch (e) {
          return { code: e.code, message: e.message, state: c.state, closes };
        }
    }"""
    )
    assert got == {
        "code": "authentication_failed",
        "message": "the session has no logged-in user",
        "state": "closed",
        "closes": [{"code": 3000, "reason": "", "reconnecting": False, "delay": None}],
    }


def test_heartbeat_notices_a_frozen_server(daphne, demo_pages):
    """A server that stops answering (SIGSTOP) is noticed by the heartbeat; then reconnected."""
    server = daphne()
    page = demo_pages(server).open().page
    page.evaluate(
        """async () => {
        const { WSCommands } = await import("/static/wscommands/wscommands.js");
        window.hb = new WSCommands({
          heartbeat: { interval: 200, timeout: 1000 },
          connectTimeout: 2000,
          reconnect: { initialDelay: 100, maxDelay: 500 },
        });
        await hb.connect();
    }"""
    )
    server.process.send_signal(signal.SIGSTOP)
    try:
        page.wait_for_function("() => !hb.is_connected()")
    finally:
        server.process.send_signal(signal.SIGCONT)
    page.wait_for_function("() => hb.is_connected()")
    assert page.evaluate("hb.call('echo', { text: 'alive' })") == {"text": "alive"}
    expect(page.locator("#status")).to_have_attribute("data-state", "ready")
