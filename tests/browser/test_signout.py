"""Signing out in one tab turns the user's other tabs to "signed out", on another process too."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, PASSWORD, running_cluster

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.redis]


@pytest.fixture(scope="module")
def quick_cluster(sqlite_env, redis_url) -> Iterator:
    """Two processes that re-check sessions every second: a logout is seen at once even
    where it sends no signal (servers closing a logged-out session's sockets at the logout
    itself need no such check)."""
    with running_cluster(sqlite_env, redis_url, SESSION_CHECK_INTERVAL=1) as servers:
        yield servers


def test_sign_out_in_one_tab_signs_out_the_other(quick_cluster, demo_pages):
    a, b = quick_cluster
    first = demo_pages(a).sign_up("ann").open()
    # The second tab: same browser (same cookie), served by the other process.
    second = first.new_tab(b).open()
    expect(second.page.locator("#me")).to_have_text(first.username)

    first.page.click(".account button")  # Sign out
    expect(first.page.locator(".account")).to_contain_text("Sign in")

    page = second.page
    expect(page.locator("#status")).to_have_attribute("data-state", "signed-out")
    expect(page.locator("#status")).to_have_text("signed out")
    notice = page.locator("#signed-out")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("You were signed out")
    expect(notice.locator("a")).to_have_attribute("href", "/accounts/login/?next=/")
    # The header: no longer "Signed in as", but the way to sign in.
    account = page.locator(".account")
    expect(account).not_to_contain_text("Signed in as")
    expect(account.locator("a", has_text="Sign in")).to_be_visible()
    expect(page.locator("#compose")).to_have_count(0)
    expect(page.locator("#counter-inc")).to_be_disabled()
    # Nothing more as the old user: the client stopped for good, and calls are refused
    # without reaching a socket; no error toast with a close code.
    assert page.evaluate("demo.client.state") == "closed"
    code = page.evaluate("demo.client.call('whoami').then(() => 'sent', (e) => e.code)")
    assert code == "disconnected"
    closes = page.evaluate("demo.closes")
    assert closes[0]["code"] in (3000, 4401), closes
    expect(page.locator("#error")).to_be_hidden()
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=ARTIFACTS / "signed-out-390.png")

    # Signing in again from the notice comes back to the demo, connected as that user.
    notice.locator("a").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))
    page.fill("#id_username", first.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#me")).to_have_text(first.username)
    expect(page.locator("#status")).to_have_attribute("data-state", "ready")
