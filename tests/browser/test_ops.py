"""The operations page in Chromium, over two daphne processes behind Redis."""

from __future__ import annotations

import json
import re
import secrets
import signal
import urllib.error
import urllib.request
from contextlib import ExitStack

import pytest
from playwright.sync_api import expect
from websockets.sync.client import connect

from tests.browser.conftest import ARTIFACTS, check_layout
from tests.live import Server, manage

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.redis]


def session_of(env: dict[str, str], username: str, staff: bool) -> str:
    """A logged-in session key for a new user (made by Django's test client, stored in the DB).

    The user's password is ``x``.
    """
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


def staff_page(browser, server: Server, env: dict[str, str]):
    """A staff user's page: sent to the sign-in page first, then back to the operations page."""
    name = f"ops-{secrets.token_hex(3)}"
    session_of(env, name, staff=True)
    context = browser.new_context(base_url=server.http)
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/wscommands/ops/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/wscommands/ops/$"))
    page.fill("#id_username", name)
    page.fill("#id_password", "x")
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/wscommands/ops/$"))
    expect(page.locator("#status")).to_have_attribute("data-state", "live")
    return context, page, errors


def test_operations_page_shows_live_counts(cluster, browser, sqlite_env):
    """Connections per process and user, group sizes, command counts and latency percentiles."""
    a, b = cluster
    suffix = secrets.token_hex(3)
    alice = f"alice-{suffix}"
    alice_key = session_of(sqlite_env, alice, staff=False)
    room = f"ops-room-{suffix}"

    # Staff only: the figures refuse an anonymous visitor and a signed-in non-staff user;
    # the page sends both to the sign-in page, with the way back.
    for cookie in (None, alice_key):
        for path, code in (("snapshot", 403), ("", 302)):
            request = urllib.request.Request(f"{a.http}/wscommands/ops/{path}")
            if cookie:
                request.add_header("Cookie", f"sessionid={cookie}")
            opener = urllib.request.build_opener(NoRedirect)
            with pytest.raises(urllib.error.HTTPError) as refused:
                opener.open(request, timeout=10)
            assert refused.value.code == code
            if code == 302:
                location = refused.value.headers["Location"]
                assert location == "/accounts/login/?next=/wscommands/ops/"

    # In a browser, the non-staff user is told why the sign-in page asks again.
    context = browser.new_context(base_url=a.http)
    context.add_cookies([{"name": "sessionid", "value": alice_key, "url": a.http}])
    page = context.new_page()
    page.goto("/wscommands/ops/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/wscommands/ops/$"))
    expect(page.locator("main")).to_contain_text(f"You are signed in as {alice}, who cannot")
    context.close()

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
        # Subscribes to the server-wide presence diffs: the library's own group, not listed.
        assert "errors" not in call(mine[1], {"presence.list": {}})

        context, page, errors = staff_page(browser, a, sqlite_env)
        expect(page.locator("#ops-processes-count")).to_have_text("2")
        expect(page.locator("#ops-lost-count")).to_be_hidden()
        expect(page.locator("#ops-connections")).to_have_text("7")
        rows = page.locator("#ops-processes tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.locator("td:nth-child(3)")).to_have_text(["live", "live"])
        for server, count in ((a, "4"), (b, "3")):
            row = page.locator(f'#ops-processes tr[data-pid="{server.process.pid}"]')
            expect(row.locator("td:nth-child(5)")).to_have_text(count)
        # Uptime: a few seconds to minutes, never the epoch.
        uptime = re.compile(r"^\d+ (s|min \d+ s)$")
        expect(rows.first.locator("td:nth-child(4)")).to_have_text(uptime)
        users = page.locator("#ops-users tbody tr")
        expect(users.filter(has_text=alice)).to_contain_text("2")
        groups = page.locator("#ops-groups tbody tr")
        expect(groups).to_have_count(1)
        expect(groups.filter(has_text=room)).to_contain_text("3")
        # 3 joins + 5 echoes + 2 divisions + 1 presence.list, 2 of them errors.
        expect(page.locator("#ops-commands-total")).to_have_text("11")
        expect(page.locator("#ops-errors-total")).to_have_text("2")

        # Live: one more connection and ten more commands show up without a reload.
        extra = stack.enter_context(connect(b.ws))
        for i in range(10):
            call(extra, {"echo": {"text": str(i)}})
        expect(page.locator("#ops-connections")).to_have_text("8")
        expect(page.locator("#ops-commands-total")).to_have_text("21")
        # A join tells the room's members on both processes (presence events): messages
        # crossing the layer, so the broadcast latency is measured, by percentile.
        call(extra, {"chat.join": {"room": room}})
        expect(page.locator("#ops-lag-p50")).to_have_text(re.compile(r"^\d+\.\d\d$"))
        expect(page.locator("#ops-lag-p99")).to_have_text(re.compile(r"^\d+\.\d\d$"))
        both = "['p50', 'p99'].map((p) => document.getElementById('ops-lag-' + p).textContent)"
        p50, p99 = map(float, page.evaluate(both))  # one poll's pair
        assert 0 < p50 <= p99 < 10_000, (p50, p99)
        expect(groups.filter(has_text=room)).to_contain_text("4")

        # Three uPlot charts with their units; the window buttons set the x range.
        expect(page.locator(".chart .uplot")).to_have_count(3)
        expect(page.locator("#chart-rates .u-axis")).to_have_count(2)
        # uPlot draws the axes on its canvas: their labels are read from the charts.
        labels = page.evaluate("ops.charts.map(({ plot }) => plot.axes[1].label)")
        assert labels == ["connections", "per second", "ms"]
        legend = page.locator("#chart-lag .u-legend .u-label")
        expect(legend).to_have_text(["Time", "p50", "p99"])
        for minutes in (1, 15, 5):
            page.click(f".window button[data-minutes='{minutes}']")
            expect(page.locator(f".window button[data-minutes='{minutes}']")).to_have_attribute(
                "aria-pressed", "true"
            )
            span = page.evaluate("(({ min, max }) => max - min)(ops.charts[0].plot.scales.x)")
            assert abs(span - 60 * minutes) < 5, span

        # A reload keeps the charts' history (the tab's sessionStorage).
        points = "ops.charts[0].plot.data[0].length"
        # Several polls: more points than a fresh page would have (waited for, not assumed).
        page.wait_for_function(f"{points} > 3")
        seen = page.evaluate(points)
        page.reload()
        expect(page.locator("#status")).to_have_attribute("data-updates", "1")
        assert page.evaluate(points) > seen
        # And the latency cards still cover the last minute, the join's deliveries included.
        expect(page.locator("#ops-lag-p99")).to_have_text(re.compile(r"^\d+\.\d\d$"))

        updates = int(page.locator("#status").get_attribute("data-updates"))
        expect(page.locator("#status")).to_have_attribute("data-updates", str(updates + 3))
        check_layout(page, "ops", ("#status", ".bar h1"))
        context.close()
    assert not errors, errors


def test_killed_process_is_lost_until_reaped(cluster, browser, sqlite_env):
    """A process killed with SIGKILL is listed as lost (its connections no longer counted),
    then gone once a live process reaps it."""
    a = cluster[0]
    # A short heartbeat of its own: reaped within 18 s of its last beat, once its figures
    # are 3 s old it is lost (the cluster's own processes keep the default).
    doomed = Server({**a.env, "WSCOMMANDS_PRESENCE_TTL": "18"}).start()
    try:
        with ExitStack() as stack:
            for _ in range(2):
                stack.enter_context(connect(doomed.ws, ping_interval=None))
            context, page, errors = staff_page(browser, a, sqlite_env)
            rows = page.locator("#ops-processes tbody tr")
            expect(rows).to_have_count(3)
            expect(page.locator("#ops-processes-count")).to_have_text("3")
            expect(page.locator("#ops-connections")).to_have_text("4")  # 2 keepers + 2
            row = page.locator(f'#ops-processes tr[data-pid="{doomed.process.pid}"]')
            expect(row).to_have_attribute("data-state", "live")

            doomed.process.send_signal(signal.SIGKILL)
            expect(row).to_have_attribute("data-state", "lost", timeout=20_000)
            expect(row.locator("td:nth-child(3)")).to_have_text("lost")
            expect(page.locator("#ops-processes-count")).to_have_text("2")
            expect(page.locator("#ops-lost-count")).to_have_text("1 lost")
            expect(page.locator("#ops-connections")).to_have_text("2")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=ARTIFACTS / "ops-lost.png", full_page=True)

            expect(rows).to_have_count(2, timeout=30_000)
            expect(row).to_have_count(0)
            expect(page.locator("#ops-lost-count")).to_be_hidden()
            context.close()
    finally:
        doomed.stop()
    assert not errors, errors


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are raised as HTTPError, to look at them."""

    def redirect_request(self, *args, **kwargs):
        return None
