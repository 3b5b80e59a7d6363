"""The operations page in Chromium, over two daphne processes behind Redis."""

from __future__ import annotations

import json
import re
import secrets
import urllib.error
import urllib.request
from contextlib import ExitStack

import pytest
from playwright.sync_api import expect
from websockets.sync.client import connect

from tests.browser.conftest import ARTIFACTS
from tests.live import manage

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.redis]


def session_of(env: dict[str, str], username: str, staff: bool) -> str:
    """A logged-in session key for a new user (made by Django's test client, stored in the DB)."""
    script = (
        "from django.contrib.auth.models import User; from django.test import Client; "
        f"u = User.objects.create_user({username!r}, password='x', is_staff={staff}); "
        "c = Client(); c.force_login(u); print(c.cookies['sessionid'].value)"
    )
    return manage("shell", "-c", script, env=env).strip().splitlines()[-1]


def call(ws, body: dict) -> dict:
    """Send one request; its reply (presence pushes before it are skipped)."""
    ws.send(json.dumps({**body, "request_id": 1}))
    while "request_id" not in (reply := json.loads(ws.recv(timeout=10))):
        pass
    return reply


def test_operations_page_shows_live_counts(cluster, browser, sqlite_env):
    """Connections per process and user, group sizes and command counts, as they happen."""
    a, b = cluster
    suffix = secrets.token_hex(3)
    alice = f"alice-{suffix}"
    staff_key = session_of(sqlite_env, f"ops-{suffix}", staff=True)
    alice_key = session_of(sqlite_env, alice, staff=False)
    room = f"ops-room-{suffix}"

    # Staff only: an anonymous visitor and a signed-in non-staff user are refused.
    for cookie in (None, alice_key):
        request = urllib.request.Request(f"{a.http}/wscommands/ops/snapshot")
        if cookie:
            request.add_header("Cookie", f"sessionid={cookie}")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 403

    with ExitStack() as stack:
        # Process A: three anonymous clients, two in the room. Process B: alice twice, one
        # in the room. Plus the cluster's idle keeper on each: 7 connections.
        anon = [stack.enter_context(connect(a.ws)) for _ in range(3)]
        cookie = {"Cookie": f"sessionid={alice_key}"}
        mine = [stack.enter_context(connect(b.ws, additional_headers=cookie)) for _ in range(2)]
        for ws in (anon[0], anon[1], mine[0]):
            assert "errors" not in call(ws, {"chat.join": {"room": room}})
        for i in range(5):
            assert call(anon[2], {"echo": {"text": str(i)}})["echo"] == {"text": str(i)}
        for ws in (anon[0], mine[1]):
            assert call(ws, {"div": {"a": 1, "b": 0}})["errors"]["div"]["code"] == "client_error"

        context = browser.new_context(base_url=a.http)
        context.add_cookies(
            [{"name": "sessionid", "value": staff_key, "domain": "127.0.0.1", "path": "/"}]
        )
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto("/wscommands/ops/")
        expect(page.locator("#status")).to_have_attribute("data-state", "live")
        expect(page.locator("#ops-processes-count")).to_have_text("2")
        expect(page.locator("#ops-connections")).to_have_text("7")
        expect(page.locator("#ops-processes tbody tr")).to_have_count(2)
        connections = page.locator("#ops-processes tbody tr td:nth-child(4)")
        expect(connections).to_have_text(["4", "3"] if _a_first(page, a) else ["3", "4"])
        users = page.locator("#ops-users tbody tr")
        expect(users.filter(has_text=alice)).to_contain_text("2")
        expect(page.locator("#ops-groups tbody tr").filter(has_text=room)).to_contain_text("3")
        # 3 joins + 5 echoes + 2 divisions, 2 of them errors (the keepers send nothing).
        expect(page.locator("#ops-commands-total")).to_have_text("10")
        expect(page.locator("#ops-errors-total")).to_have_text("2")

        # Live: one more connection and ten more commands show up without a reload.
        extra = stack.enter_context(connect(b.ws))
        for i in range(10):
            call(extra, {"echo": {"text": str(i)}})
        expect(page.locator("#ops-connections")).to_have_text("8")
        expect(page.locator("#ops-commands-total")).to_have_text("20")
        # A join tells the room's members on both processes (presence events): messages
        # crossing the layer, so the broadcast latency is measured.
        call(extra, {"chat.join": {"room": room}})
        expect(page.locator("#ops-lag")).to_have_text(re.compile(r"^\d+\.\d\d$"))
        expect(page.locator("#ops-groups tbody tr").filter(has_text=room)).to_contain_text("4")
        # Charts have had several points by now: wait for a few more refreshes, then capture.
        updates = int(page.locator("#status").get_attribute("data-updates"))
        expect(page.locator("#status")).to_have_attribute("data-updates", str(updates + 3))
        ARTIFACTS.mkdir(exist_ok=True)
        page.set_viewport_size({"width": 1200, "height": 800})
        page.screenshot(path=ARTIFACTS / "ops.png", full_page=True)
        context.close()
    assert not errors, errors


def _a_first(page, a) -> bool:
    """Whether process A's row comes first (rows are sorted by channel name, not port)."""
    pid = page.locator("#ops-processes tbody tr").first.locator("td:nth-child(3)").text_content()
    return int(pid) == a.process.pid
