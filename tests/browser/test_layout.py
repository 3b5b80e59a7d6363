"""The demo's pages from a 320 px phone to a desktop: no sideways scroll, the header (with the
account links) and the connection status always in view. Screenshots: test-artifacts/layout/."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import check_layout

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.redis]

HEADER = (".topbar .brand", "#status")


def test_demo_signed_in_fits_every_width(cluster, demo_pages):
    ann = demo_pages(cluster[0]).sign_up("averyveryverylongusernamewithoutbreaks").open()
    ann.say("a message, so that the room is not empty")
    expect(ann.page.locator("#messages")).to_contain_text("a message")
    check_layout(ann.page, "demo-signed-in", (*HEADER, "#me", ".account button"))


def test_demo_signed_out_fits_every_width(cluster, demo_pages):
    guest = demo_pages(cluster[0]).open()
    sign_in = ".account a[href='/accounts/login/']"
    check_layout(guest.page, "demo-guest", (*HEADER, sign_in, ".account a.button"))


@pytest.mark.parametrize("name", ["login", "signup"])
def test_account_pages_fit_every_width(cluster, demo_pages, name):
    page = demo_pages(cluster[0]).page
    page.goto(f"/accounts/{name}/")
    check_layout(page, name, (".topbar .brand", ".account a.button"))
