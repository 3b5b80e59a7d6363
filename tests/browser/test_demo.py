"""The demo in a real browser: two users on two daphne processes behind Redis."""

from __future__ import annotations

import signal

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS
from tests.live import Server

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.redis]


def test_two_users_chat_across_two_processes(cluster, demo_pages):
    """Ann on process A and Bob on process B see each other online and chat in #lobby."""
    a, b = cluster
    ann = demo_pages(a).sign_up("ann").open()
    bob = demo_pages(b).sign_up("bob").open()

    for page in (ann, bob):
        online = page.page.locator("#online")
        expect(online).to_contain_text(ann.username)
        expect(online).to_contain_text(bob.username)
        expect(page.page.locator("#room-members")).to_contain_text(bob.username)

    ann.say("hello from process A")
    expect(bob.page.locator("#messages")).to_contain_text("hello from process A")
    bob.say("hi Ann, this is B")
    expect(ann.page.locator("#messages")).to_contain_text("hi Ann, this is B")
    expect(ann.page.locator("#messages .mine")).to_contain_text("hello from process A")

    ARTIFACTS.mkdir(exist_ok=True)
    ann.page.set_viewport_size({"width": 1100, "height": 720})
    ann.page.screenshot(path=ARTIFACTS / "demo.png")


def test_counter_and_who_is_online_update_live(cluster, demo_pages):
    """A click on one process updates the counter on the other; leaving updates who is online."""
    a, b = cluster
    ann = demo_pages(a).sign_up("ann").open()
    guest = demo_pages(b).open()
    expect(guest.page.locator("#online")).to_contain_text(ann.username)
    guest_id = guest.page.evaluate("demo.client.call('whoami')")["connection_id"]
    process = guest_id.rpartition("~")[0]  # guests are counted per process, not listed
    ann.page.wait_for_function("(p) => demo.online.guestsByProcess.get(p) >= 1", arg=process)
    expect(ann.page.locator("#guests")).to_contain_text("guest")

    value = ann.page.evaluate("demo.client.call('counter.get')")
    ann.page.click("#counter-inc")
    expect(guest.page.locator("#counter-value")).to_have_text(str(value + 1))
    expect(ann.page.locator("#counter-value")).to_have_text(str(value + 1))

    ann.close()
    # Her leave is held PRESENCE_GRACE (5 s) in case her page comes back: wait beyond it.
    expect(guest.page.locator("#online")).not_to_contain_text(ann.username, timeout=20_000)


def test_reconnects_after_its_server_restarts(cluster, demo_pages):
    """Bob's process restarts (4503); his page reconnects, rejoins the room and chats on."""
    a, b = cluster
    ann = demo_pages(a).sign_up("ann").open()
    bob = demo_pages(b).sign_up("bob").open()
    bob.page.evaluate(
        "() => { window.codes = []; demo.client.onclose((i) => codes.push(i.code)); }"
    )
    status = bob.page.locator("#status")

    b.stop()
    expect(status).not_to_have_attribute("data-state", "ready")
    b.start()
    expect(status).to_have_attribute("data-state", "ready", timeout=30_000)
    assert bob.page.evaluate("codes")[0] == 4503, "the server said it was restarting"

    bob.say("back after the restart")
    expect(ann.page.locator("#messages")).to_contain_text("back after the restart")
    ann.say("welcome back")
    expect(bob.page.locator("#messages")).to_contain_text("welcome back")


def test_a_killed_process_users_leave_open_pages(cluster, demo_pages):
    """kill -9 of Ann's process: her name leaves Bob's page, once, when A reaps the process."""
    a, _ = cluster
    ttl = 3  # the dead process's own heartbeat TTL decides when it is reaped
    doomed = Server({**a.env, "WSCOMMANDS_PRESENCE_TTL": str(ttl)}).start()
    # Last in this file, watched from process A, whose reaper has run through the other
    # tests: it may learn of the doomed process only at its next wake, long after the
    # doomed one's short ttl (its entries must wait for it: they once expired at 2 * ttl,
    # and Ann stayed a ghost). tests/scaleout/test_presence.py pins that timing down.
    try:
        ann = demo_pages(doomed).sign_up("ann").open()
        bob = demo_pages(a).sign_up("bob").open()
        expect(bob.page.locator("#online")).to_contain_text(ann.username)
        expect(bob.page.locator("#room-members")).to_contain_text(ann.username)
        doomed.stop(signal.SIGKILL)
        # Reaped at the first wake of A's reaper after the doomed heartbeat (ttl) expired:
        # A's reaper wakes at least every 10 s (its PRESENCE_TTL / 3, of the default 30 s).
        # The wait is a hang guard above that.
        gone = {"timeout": (ttl + 30 / 3 + 10) * 1000}
        expect(bob.page.locator("#online")).not_to_contain_text(ann.username, **gone)
        expect(bob.page.locator("#room-members")).not_to_contain_text(ann.username, **gone)
        left = bob.page.locator("#messages .system", has_text=f"{ann.username} left")
        expect(left).to_have_count(1)
        ann.close()
    finally:
        doomed.stop()
