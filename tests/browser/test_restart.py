"""Restarts users do not notice, in a real browser: no leave/join pair on the other users'
pages, and the demo's counter kept (also in the default in-memory mode)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from playwright.sync_api import expect
from websockets.sync.client import connect

from tests.live import Server

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.redis]

#: Generous for a loaded machine: the restarted process must be back, and Bob's page with it,
#: within the grace for his leave to be cancelled by his return.
GRACE = 20


@pytest.fixture
def pair(sqlite_env: dict[str, str], redis_url: str) -> Iterator[tuple[Server, Server]]:
    """Two daphne processes behind Redis with a PRESENCE_GRACE of GRACE seconds; A keeps an
    idle connection (see the cluster fixture of conftest.py)."""
    env = {
        **sqlite_env,
        "REDIS_URL": redis_url,
        "WSCOMMANDS_PRESENCE_GRACE": str(GRACE),
        "WSCOMMANDS_LIMITS": json.dumps({"PREFIX": f"restart-{secrets.token_hex(3)}"}),
    }
    servers = [Server(env).start(), Server(env).start()]
    with ExitStack() as keepers:
        keepers.enter_context(connect(servers[0].ws, ping_interval=None))
        yield servers[0], servers[1]
    for server in servers:
        server.stop()


#: Bob's connections as Ann's page sees them (who is online, server-wide).
CONNECTIONS = """(name) => {
  const user = demo.online.list().find((u) => u.username === name);
  return user ? user.connections : [];
}"""


def test_a_graceful_restart_shows_no_leave_and_join(pair, demo_pages):
    """Bob's process restarts (SIGTERM, 4503) and his page reconnects to it: Ann's page never
    says "bob left" nor "bob joined" again, and lists him all along; his old connection goes
    from her view once the grace is over."""
    a, b = pair
    ann = demo_pages(a).sign_up("ann").open()
    bob = demo_pages(b).sign_up("bob").open()
    expect(ann.page.locator("#online")).to_contain_text(bob.username)
    expect(ann.page.locator("#room-members")).to_contain_text(bob.username)
    system = ann.page.locator("#messages .system", has_text=bob.username)
    before = system.all_inner_texts()
    old = bob.page.evaluate("demo.client.call('whoami')")["connection_id"]

    b.stop()
    b.start()
    expect(bob.page.locator("#status")).to_have_attribute("data-state", "ready", timeout=30_000)
    new = bob.page.evaluate("demo.client.call('whoami')")["connection_id"]
    assert new != old
    # Bob's held leave comes once the grace is over, after his new connection's join.
    ann.page.wait_for_function(
        f"(name) => JSON.stringify(({CONNECTIONS})(name)) === JSON.stringify([{json.dumps(new)}])",
        arg=bob.username,
        timeout=(GRACE + 30) * 1000,
    )
    expect(ann.page.locator("#room-members")).to_contain_text(bob.username)
    assert system.all_inner_texts() == before, "a leave/join pair was shown"


def test_the_counter_survives_a_restart_in_the_in_memory_mode(sqlite_env, demo_pages):
    """One process, no Redis (the library's in-memory default): a click, a restart, and the
    page shows the same value (the example keeps its counter in its database)."""
    server = Server(sqlite_env).start()
    try:
        page = demo_pages(server).open()
        value = page.page.evaluate("demo.client.call('counter.get')")
        page.page.click("#counter-inc")
        expect(page.page.locator("#counter-value")).to_have_text(str(value + 1))
        server.stop()
        expect(page.page.locator("#status")).not_to_have_attribute("data-state", "ready")
        server.start()
        status = page.page.locator("#status")
        expect(status).to_have_attribute("data-state", "ready", timeout=30_000)
        expect(page.page.locator("#counter-value")).to_have_text(str(value + 1))
    finally:
        server.stop()
