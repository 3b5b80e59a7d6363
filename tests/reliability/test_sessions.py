"""Authentication life cycle on real servers (daphne, uvicorn, the engine): sessions ending
elsewhere, no leaked keys."""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import time
import urllib.parse
import urllib.request

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.live import SERVERS, Server, manage
from tests.scaleout.client import WSClient
from tests.scaleout.conftest import http_login

pytestmark = pytest.mark.e2e


def end_session(env: dict[str, str], key: str, how: str) -> None:
    """Log a session out server-side (``delete``) or let it expire (``expire``)."""
    action = "delete()" if how == "delete" else "update(expire_date=timezone.now() - timedelta(1))"
    manage(
        "shell",
        "-c",
        "from datetime import timedelta; from django.utils import timezone; "
        "from django.contrib.sessions.models import Session; "
        f"Session.objects.filter(session_key={key!r}).{action}",
        env=env,
    )


async def closed_code(client: WSClient, timeout: float) -> int:
    """Wait for the server to close ``client``; its close code."""
    async with asyncio.timeout(timeout):
        await asyncio.gather(client._reader, return_exceptions=True)
    return client.ws.close_code


# Slow (about 14 s a server): uvicorn's path to the session watcher is daphne's.
@pytest.mark.parametrize("kind", ["daphne", "engine"], indirect=True)
async def test_ended_sessions_are_closed_4401_and_keys_never_leak(live, reliability_db, kind):
    """Logged out elsewhere (cookie) or expired (authenticate): closed 4401 within the interval.

    A connection whose session is still valid stays. Afterwards neither the server log nor
    any frame the server sent contains a session key.
    """
    server = live(kind=kind, SESSION_CHECK_INTERVAL=0.5)
    site = live() if kind == "engine" else server  # the engine serves no HTTP
    keys = [http_login(site, "rel") for _ in range(3)]
    by_cookie = await WSClient.open(server.ws, session_key=keys[0])
    by_command = await WSClient.open(server.ws)
    auth = await by_command.call("authenticate", session_id=keys[1])
    assert auth["authenticate"] == "success"
    stays = await WSClient.open(server.ws, session_key=keys[2])
    for client in (by_cookie, by_command, stays):
        assert (await client.call("whoami"))["username"] == "rel"
    failed = await WSClient.open(server.ws)
    refused = await failed.request({"authenticate": {"session_id": keys[0][::-1]}})
    assert refused["authenticate"]["authenticate"] == "failure"

    end_session(reliability_db, keys[0], "delete")
    end_session(reliability_db, keys[1], "expire")
    assert await closed_code(by_cookie, timeout=15) == 4401
    assert await closed_code(by_command, timeout=15) == 4401
    assert await stays.call("echo", text="still served") == {"text": "still served"}

    sent = json.dumps([refused, auth, stays.pushes, by_cookie.pushes, by_command.pushes])
    await stays.close()
    await failed.close()
    log = server.log()
    assert "session ended" in log
    for key in keys:
        assert key not in log
        assert key not in sent
        assert key[::-1] not in log


@pytest.mark.parametrize("kind", SERVERS, indirect=True)
async def test_connections_per_user_cap(live, kind):
    """MAX_CONNECTIONS_PER_USER: a user's extra connection is closed with 4429."""
    server = live(kind=kind, MAX_CONNECTIONS_PER_USER=2)
    key = http_login(live() if kind == "engine" else server, "rel")  # the engine: no HTTP
    first = await WSClient.open(server.ws, session_key=key)
    second = await WSClient.open(server.ws, session_key=key)
    headers = {"Cookie": f"sessionid={key}"}
    async with connect(server.ws, additional_headers=headers) as third:
        with pytest.raises(ConnectionClosed):
            await third.recv()
        assert third.close_code == 4429
    anonymous = await WSClient.open(server.ws)  # other users (and anonymous) unaffected
    assert await anonymous.call("echo", text="ok") == {"text": "ok"}
    for client in (first, second, anonymous):
        await client.close()


def http_logout(server: Server, session_key: str) -> None:
    """Sign out through Django's LogoutView (POST, with the session cookie and a CSRF token)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    jar.set_cookie(_cookie("sessionid", session_key))
    login = f"{server.http}/accounts/login/"
    opener.open(login, timeout=30).read()  # a CSRF cookie
    csrf = next(c.value for c in jar if c.name == "csrftoken")
    logout = f"{server.http}/accounts/logout/"
    data = urllib.parse.urlencode({"csrfmiddlewaretoken": csrf}).encode()
    opener.open(urllib.request.Request(logout, data, headers={"Referer": logout}), timeout=30)


def _cookie(name: str, value: str) -> http.cookiejar.Cookie:
    return http.cookiejar.Cookie(
        0,
        name,
        value,
        None,
        False,
        "127.0.0.1",
        False,
        False,
        "/",
        True,
        False,
        None,
        True,
        None,
        None,
        {},
    )


@pytest.mark.parametrize("kind", ["daphne", "engine"], indirect=True)
async def test_a_logout_anywhere_closes_that_sessions_sockets_everywhere_4401(
    live, reliability_db, own_redis, kind
):
    """Two processes on Redis; the session's sockets on both (one signed in by cookie, one
    by authenticate) close with 4401 when the user signs out over HTTP on one of them (the
    other a daphne or the engine), long before the periodic check (an hour). The same user's
    other session stays; deleting a session row (from another process: manage.py) closes its
    socket too."""
    env = {"REDIS_URL": own_redis.url}
    a = live(env=env, SESSION_CHECK_INTERVAL=3600)
    b = live(env=env, kind=kind, SESSION_CHECK_INTERVAL=3600)  # WebSockets only
    ending, other, deleted = (http_login(a, "rel") for _ in range(3))
    on_a = await WSClient.open(a.ws, session_key=ending)
    on_b = await WSClient.open(b.ws)
    assert (await on_b.call("authenticate", session_id=ending))["authenticate"] == "success"
    stays = await WSClient.open(b.ws, session_key=other)
    doomed = await WSClient.open(a.ws, session_key=deleted)
    for client in (on_a, on_b, stays, doomed):
        assert (await client.call("whoami"))["username"] == "rel"

    started = time.monotonic()
    await asyncio.to_thread(http_logout, a, ending)
    codes = await asyncio.gather(closed_code(on_a, 30), closed_code(on_b, 30))
    print(f"logout: sockets closed {time.monotonic() - started:.2f}s after the POST returned")
    assert codes == [4401, 4401]
    assert await stays.call("echo", text="still served") == {"text": "still served"}

    await asyncio.to_thread(end_session, {**reliability_db, **env}, deleted, "delete")
    assert await closed_code(doomed, 30) == 4401
    assert await stays.call("echo", text="still served") == {"text": "still served"}
    await stays.close()
    for server in (a, b):
        assert ending not in server.log()
