"""Authentication life cycle on a real daphne: sessions ending elsewhere, no leaked keys."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.live import manage
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


async def test_ended_sessions_are_closed_3000_and_keys_never_leak(live, reliability_db):
    """Logged out elsewhere (cookie) or expired (authenticate): closed 3000 within the interval.

    A connection whose session is still valid stays. Afterwards neither the server log nor
    any frame the server sent contains a session key.
    """
    server = live(SESSION_CHECK_INTERVAL=0.5)
    keys = [http_login(server, "rel") for _ in range(3)]
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
    assert await closed_code(by_cookie, timeout=15) == 3000
    assert await closed_code(by_command, timeout=15) == 3000
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


async def test_connections_per_user_cap(live):
    """MAX_CONNECTIONS_PER_USER: a user's extra connection is closed with 4429."""
    server = live(MAX_CONNECTIONS_PER_USER=2)
    key = http_login(server, "rel")
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
