"""The client across reconnects, in Chromium against the example project (issue 9).

Queued calls wait for the onready handlers; the demo's pending messages, countdown,
"retry now" and greyed presence; the browser's online and offline events.
"""

from __future__ import annotations

import re
import signal

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DemoPage
from tests.live import ROOT, Server

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

# Retries so far apart that only "retry now", "online" or connect() can bring the page back
# (after a close other than 4503, whose delay is drawn at random below the backoff).
NO_AUTOMATIC_RETRY = """() => {
  const slow = { initialDelay: 600000, maxDelay: 600000, jitter: 0 };
  Object.assign(demo.client.options.reconnect, slow);
}"""


COUNT_ATTEMPTS = "() => { window.tries = 0; demo.client.onconnecting(() => tries++); }"


def ann_retrying_only_when_told(demo_pages, server: Server) -> DemoPage:
    """ann's demo page with NO_AUTOMATIC_RETRY, counting its connection attempts in ``tries``."""
    ann = demo_pages(server).sign_up("ann").open()
    ann.page.evaluate(NO_AUTOMATIC_RETRY)
    ann.page.evaluate(COUNT_ATTEMPTS)
    return ann


def readme_snippet() -> str:
    """The README's client example, verbatim (the ```js block with onready and chat.say)."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```js\n(.*?)```", readme, re.S)
    (snippet,) = [b for b in blocks if "client.onready" in b and "chat.say" in b]
    return snippet


def test_readme_snippet_runs_verbatim_for_a_signed_in_user(daphne, demo_pages):
    """onready joins #lobby; the call queued before connecting then says "hi" in it."""
    ann = demo_pages(daphne()).sign_up("ann").open()
    ann.page.evaluate("() => { window.shown = []; window.show = (m) => shown.push(m); }")
    ann.page.add_script_tag(type="module", content=readme_snippet() + "\nwindow.snippetDone = 1;\n")
    ann.page.wait_for_function("() => window.snippetDone === 1")
    ann.page.wait_for_function("() => shown.some((m) => m.text === 'hi')")
    said = ann.page.evaluate("shown.filter((m) => m.text === 'hi')")
    assert said[0] == {"room": "lobby", "from": ann.username, "text": "hi"}


def test_a_message_typed_while_the_server_is_down_is_sent_after_the_room_is_rejoined(
    daphne, demo_pages
):
    """Shown as pending meanwhile; once back, it reaches the room (it used to be refused)."""
    server = daphne()
    ann = demo_pages(server).sign_up("ann").open()
    bob = demo_pages(server).sign_up("bob").open()
    status = bob.page.locator("#status")
    server.stop()
    expect(status).not_to_have_attribute("data-state", "ready")
    bob.say("typed while the server was down")
    expect(bob.page.locator("#pending .pending")).to_have_text("typed while the server was down")
    server.start()
    for user in (ann, bob):
        back = user.page.locator("#status")
        expect(back).to_have_attribute("data-state", "ready", timeout=30_000)
    expect(ann.page.locator("#messages")).to_contain_text("typed while the server was down")
    expect(bob.page.locator("#pending li")).to_have_count(0)
    expect(bob.page.locator("#messages .mine")).to_contain_text("typed while the server was down")


def test_countdown_retry_now_and_greyed_presence(daphne, demo_pages):
    """Away: a live countdown, presence greyed; "retry now" connects without waiting it out."""
    server = daphne()
    ann = ann_retrying_only_when_told(demo_pages, server)
    page = ann.page
    server.stop(signal.SIGKILL)  # a crash: 1006, then the backoff's 600 s
    status = page.locator("#status")
    expect(status).to_have_attribute("data-state", "waiting")
    expect(status).to_have_text(re.compile(r"^reconnecting in \d+ s$"))
    expect(page.locator("body")).to_have_class(re.compile(r"\bdisconnected\b"))
    assert page.evaluate("getComputedStyle(document.querySelector('#online')).opacity") != "1"
    expect(page.locator("#retry-now")).to_be_visible()
    # The countdown counts down: its text changes while the page waits.
    first = status.text_content()
    page.wait_for_function("(t) => document.querySelector('#status').textContent !== t", arg=first)

    server.start()
    assert page.evaluate("tries") == 0, "600 s to the next attempt"
    page.click("#retry-now")
    assert page.evaluate("tries") == 1
    expect(status).to_have_attribute("data-state", "ready")
    expect(page.locator("#retry-now")).to_be_hidden()
    expect(page.locator("body")).not_to_have_class(re.compile(r"\bdisconnected\b"))


def test_offline_spends_no_attempts_and_online_reconnects_at_once(daphne, demo_pages):
    """While the browser is offline nothing is tried; its "online" event reconnects at once."""
    server = daphne()
    ann = ann_retrying_only_when_told(demo_pages, server)
    page = ann.page
    ann.context.set_offline(True)
    server.stop()
    status = page.locator("#status")
    expect(status).to_have_attribute("data-state", "offline")
    expect(status).to_have_text("offline: waiting for the network")
    server.start()
    assert page.evaluate("[demo.client.state, demo.client.attempt, tries]") == ["offline", 0, 0]

    ann.context.set_offline(False)
    expect(status).to_have_attribute("data-state", "ready")
    assert page.evaluate("tries") == 1
