"""Playwright (sync API) driving Debian's Chromium against real daphne processes.

Playwright cannot download its own browsers here: we launch the system's ``chromium``
(``apt-get install chromium``). Missing, it fails the tests in CI and skips them elsewhere.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
from websockets.sync.client import connect

from tests.live import ROOT, Server
from tests.require import require

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "a-demo-password-1"


@pytest.fixture(scope="session")
def browser() -> Iterator:
    """One headless Chromium for the session."""
    chromium = require("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def cluster(sqlite_env: dict[str, str], redis_url: str) -> Iterator[tuple[Server, Server]]:
    """Two daphne processes behind Redis, sharing one SQLite file (users and sessions)."""
    with running_cluster(sqlite_env, redis_url) as servers:
        yield servers


@contextmanager
def running_cluster(
    sqlite_env: dict[str, str], redis_url: str, **settings: Any
) -> Iterator[tuple[Server, Server]]:
    """Two daphne processes behind Redis with WSCOMMANDS ``settings`` of their own.

    Their own key prefix keeps them apart from other suites' servers on the same Redis.
    Each process keeps one idle connection open: a process whose last connection closes
    stops its hub, and that stop can hang in channels_redis' receive, wedging every later
    handshake on that process (a server bug, reported; not what these tests are about).
    """
    prefix = f"browser-{secrets.token_hex(3)}"
    env = {
        **sqlite_env,
        "REDIS_URL": redis_url,
        "WSCOMMANDS_LIMITS": json.dumps({"PREFIX": prefix, **settings}),
    }
    servers = [Server(env).start(), Server(env).start()]
    try:
        with ExitStack() as keepers:
            for server in servers:
                keepers.enter_context(connect(server.ws, ping_interval=None))
            yield servers[0], servers[1]
    finally:
        for server in servers:
            server.stop()


class DemoPage:
    """A browser context (one user's cookies) with the demo open; JS errors are recorded."""

    def __init__(self, browser, server: Server):
        self.server = server
        self.context = browser.new_context(base_url=server.http)
        self.context.set_default_timeout(15_000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.username: str | None = None

    def sign_up(self, name: str) -> DemoPage:
        """Create an account through the sign-up form (which signs it in)."""
        self.username = f"{name}-{secrets.token_hex(3)}"
        self.page.goto("/accounts/signup/")
        self.page.fill("#id_username", self.username)
        self.page.fill("#id_password1", PASSWORD)
        self.page.fill("#id_password2", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(re.compile(r"/$"))
        return self

    def open(self, path: str = "/") -> DemoPage:
        """Open the demo and wait until its client is connected and has loaded the room."""
        from playwright.sync_api import expect

        if not self.page.url.endswith(path):
            self.page.goto(path)
        try:
            # A fresh server's first requests can be slow on a busy machine.
            status = self.page.locator("#status")
            expect(status).to_have_attribute("data-state", "ready", timeout=20_000)
            expect(self.page.locator("#room-members")).to_contain_text("here")
        except AssertionError as exc:
            closes = self.page.evaluate("demo.closes")
            log = self.server.log()[-3000:]
            raise AssertionError(
                f"{exc}\nconnection closes: {closes}\nserver log:\n{log}"
            ) from None
        return self

    def new_tab(self, server: Server) -> DemoPage:
        """Another tab of the same browser (same cookies), on ``server``'s demo, not opened yet."""
        tab = DemoPage.__new__(DemoPage)
        tab.server, tab.context, tab.username = server, self.context, self.username
        tab.page = self.context.new_page()
        tab.errors = self.errors  # closed and checked with this page
        tab.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        tab.page.goto(f"{server.http}/")
        return tab

    def say(self, text: str) -> None:
        self.page.fill("#message-input", text)
        self.page.click("#send")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def demo_pages(browser) -> Iterator:
    """A factory of :class:`DemoPage`; every page must end without JavaScript errors."""
    pages: list[DemoPage] = []

    def open_page(server: Server) -> DemoPage:
        page = DemoPage(browser, server)
        pages.append(page)
        return page

    yield open_page
    errors = [error for page in pages for error in page.errors]
    for page in pages:
        page.close()
    assert not errors, f"JavaScript errors on the demo page: {errors}"


#: Phone (small, common), tablet, desktop: (width, height) in CSS pixels.
VIEWPORTS = ((320, 568), (390, 844), (768, 1024), (1280, 800))


def check_layout(page, name: str, always_visible: tuple[str, ...]) -> None:
    """At each of :data:`VIEWPORTS`: no sideways scroll, and ``always_visible`` in view both at
    the top and scrolled to the bottom; a screenshot of each in test-artifacts/layout/."""
    from playwright.sync_api import expect

    folder = ARTIFACTS / "layout"
    folder.mkdir(parents=True, exist_ok=True)
    for width, height in VIEWPORTS:
        page.set_viewport_size({"width": width, "height": height})
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_function(f"window.innerWidth === {width} && window.scrollY === 0")
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width, f"{name} at {width} px is {scroll_width} px wide"
        for selector in always_visible:
            expect(page.locator(selector)).to_be_in_viewport(ratio=1)
        page.screenshot(path=folder / f"{name}-{width}.png", full_page=True)
        scrollable = page.evaluate("document.documentElement.scrollHeight > window.innerHeight")
        if scrollable:
            page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
            page.wait_for_function("window.scrollY > 0")
            for selector in always_visible:
                expect(page.locator(selector)).to_be_in_viewport(ratio=1)
            page.screenshot(path=folder / f"{name}-{width}-scrolled.png")
    page.evaluate("window.scrollTo(0, 0)")
