"""``GET /session_id`` on a real daphne: nothing stored for anonymous visitors."""

from __future__ import annotations

import sqlite3
import urllib.request

import pytest

from tests.scaleout.client import WSClient
from tests.scaleout.conftest import http_login

pytestmark = pytest.mark.e2e


def session_rows(database_url: str) -> int:
    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
        return db.execute("SELECT COUNT(*) FROM django_session").fetchone()[0]


def get(url: str, cookie: str | None = None) -> tuple[str, str | None]:
    """The body and the Set-Cookie header of a GET."""
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read().decode(), response.headers.get("Set-Cookie")


async def test_cookieless_session_id_stores_nothing(live, reliability_db):
    """50 cookieless GETs: empty answers, no cookie, no new session row. A logged-in browser
    still gets its key, and that key authenticates a WebSocket."""
    server = live()
    database = reliability_db["DATABASE_URL"]
    before = session_rows(database)
    for _ in range(50):
        body, cookie = get(f"{server.http}/session_id")
        assert (body, cookie) == ("", None)
    assert session_rows(database) == before

    key = http_login(server, "rel")
    body, _ = get(f"{server.http}/session_id", cookie=f"sessionid={key}")
    assert body == key
    client = await WSClient.open(server.ws)
    reply = await client.request({"authenticate": {"session_id": body}})
    assert reply["authenticate"]["authenticate"] == "success"
    await client.close()
