"""End to end: real `daphne project.asgi:application` processes, a real WebSocket client
library, the real HTTP login form. The tests marked ``over_every_server`` run the same
protocol against daphne, uvicorn and the engine (``manage.py wscommands_engine``, which
serves no HTTP: a daphne beside it serves the login form)."""

from __future__ import annotations

import asyncio
import http.cookiejar
import itertools
import json
import re
import urllib.parse
import urllib.request
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.live import SERVERS, Server, create_user
from tests.require import require

pytestmark = pytest.mark.e2e

USERNAME = "e2e-core-ann"
PASSWORD = "e2e-core-pw"


class Client:
    """A protocol client over `websockets`: replies matched by request_id, pushes kept."""

    def __init__(self, ws: ClientConnection):
        self.ws = ws
        self.pushes: list[dict[str, Any]] = []
        self.replies: dict[Any, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    async def receive(self) -> dict[str, Any]:
        return json.loads(await asyncio.wait_for(self.ws.recv(), 10))

    async def reply_to(self, request_id: Any) -> dict[str, Any]:
        while request_id not in self.replies:
            message = await self.receive()
            if "request_id" in message:
                self.replies[message["request_id"]] = message
            else:
                self.pushes.append(message)
        return self.replies.pop(request_id)

    async def request(self, commands: dict[str, Any]) -> dict[str, Any]:
        request_id = next(self._ids)
        await self.ws.send(json.dumps({**commands, "request_id": request_id}))
        return await self.reply_to(request_id)

    async def error_reply(self, frame: str | bytes) -> dict[str, Any]:
        """Send a frame the server refuses; its reply is the next one without request_id
        that carries errors.request."""
        await self.ws.send(frame)
        while True:
            message = await self.receive()
            if "request" in message.get("errors", {}):
                return message
            self.pushes.append(message)

    async def push(self, event: str) -> dict[str, Any]:
        while True:
            for i, message in enumerate(self.pushes):
                if event in message:
                    return self.pushes.pop(i)[event]
            message = await self.receive()
            if "request_id" in message:
                self.replies[message["request_id"]] = message
            else:
                self.pushes.append(message)


over_every_server = pytest.mark.parametrize("kind", SERVERS)


def serve(daphne, kind: str) -> Server:
    """A server of ``kind``."""
    if kind == "engine":
        require("picows")
    return daphne(kind=kind)


def site(daphne, server: Server) -> Server:
    """The server of ``server``'s pages: itself, or a daphne beside the engine (which serves
    no HTTP), on the same database."""
    return daphne() if server.kind == "engine" else server


def open_client(server: Server, **kwargs: Any):
    return connect(server.ws, open_timeout=10, **kwargs)


@pytest.fixture(scope="module")
def user(sqlite_env) -> str:
    """A user in the live servers' SQLite database."""
    create_user(sqlite_env, USERNAME, PASSWORD)
    return USERNAME


def log_in(server: Server, username: str, password: str) -> tuple[str, str]:
    """Sign in through /accounts/login/ (CSRF and all); returns (session key, /session_id)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{server.http}/accounts/login/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode(
        {"username": username, "password": password, "csrfmiddlewaretoken": token}
    ).encode()
    opener.open(f"{server.http}/accounts/login/", data=form, timeout=10)
    cookies = {cookie.name: cookie.value for cookie in jar}
    assert "sessionid" in cookies, "the login form did not log in"
    session_id = opener.open(f"{server.http}/session_id", timeout=10).read().decode()
    return cookies["sessionid"], session_id


@over_every_server
async def test_echo_round_trip(daphne, kind):
    """A real client, a real server: request, reply with its request_id."""
    server = serve(daphne, kind)
    async with open_client(server) as ws:
        client = Client(ws)
        reply = await client.request({"echo": {"text": "héllo"}, "square": 3})
        assert reply == {"echo": {"text": "héllo"}, "square": 9, "request_id": reply["request_id"]}
    async with open_client(server, origin=f"http://127.0.0.1:{server.port}") as ws:
        assert (await Client(ws).request({"legacy_echo": "x"}))["legacy_echo"] == "x"


@over_every_server
async def test_foreign_origin_is_refused_with_403(daphne, kind):
    """A handshake from another site's page never opens."""
    server = serve(daphne, kind)
    for origin in ("http://evil.example", "null"):
        with pytest.raises(InvalidStatus) as info:
            async with open_client(server, origin=origin):
                pass
        assert info.value.response.status_code == 403


@over_every_server
async def test_handshake_cookie_of_a_user_logged_in_through_the_login_form(daphne, user, kind):
    """Log in with the HTML form; the session cookie on the handshake identifies the user,
    and /session_id serves the same key."""
    server = serve(daphne, kind)
    http = site(daphne, server)
    session_key, session_id = await asyncio.to_thread(log_in, http, user, PASSWORD)
    assert session_id == session_key
    headers = {"Cookie": f"sessionid={session_key}"}
    origin = f"http://127.0.0.1:{server.port}"
    async with open_client(server, origin=origin, additional_headers=headers) as ws:
        client = Client(ws)
        who = (await client.request({"whoami": {}}))["whoami"]
        assert (who["authenticated"], who["username"]) == (True, user)
        assert (await client.request({"add": {"a": 2, "b": 3}}))["add"] == 5


@over_every_server
async def test_authenticate_success_and_failure_with_close_3000(daphne, user, kind):
    """authenticate with the key from /session_id succeeds; a bogus key fails, the server
    closes with 3000, and on_disconnect runs (the example bye hook tells the room)."""
    server = serve(daphne, kind)
    http = site(daphne, server)
    _, session_id = await asyncio.to_thread(log_in, http, user, PASSWORD)
    async with open_client(server) as ws:
        client = Client(ws)
        reply = await client.request({"authenticate": {"session_id": session_id}, "whoami": {}})
        assert reply["authenticate"]["authenticate"] == "success"
        assert reply["authenticate"]["user"]["username"] == user
        assert reply["whoami"]["username"] == user
    async with open_client(server) as observer_ws, open_client(server) as victim_ws:
        observer, victim = Client(observer_ws), Client(victim_ws)
        await observer.request({"chat.join": {"room": "e2e-core"}})
        victim_id = (await victim.request({"chat.join": {"room": "e2e-core"}, "whoami": {}}))[
            "whoami"
        ]["connection_id"]
        await victim_ws.send(
            json.dumps({"authenticate": {"session_id": "bogus"}, "echo": {"text": "never"}})
        )
        reply = await victim.push("authenticate")
        assert reply["authenticate"] == "failure"
        assert isinstance(reply["message"], str)
        with pytest.raises(ConnectionClosed):
            while True:
                message = await victim.receive()
                assert "echo" not in message
        assert victim_ws.close_code == 3000
        left = await observer.push("chat_left")
        assert left == {"room": "e2e-core", "connection_id": victim_id}


@over_every_server
async def test_a_slow_sync_command_does_not_block_other_connections(daphne, kind):
    """sleep (a sync command) on one connection; another connection's sync and async
    commands are answered while it sleeps."""
    server = serve(daphne, kind)
    async with open_client(server) as slow_ws, open_client(server) as fast_ws:
        slow, fast = Client(slow_ws), Client(fast_ws)
        slow_reply = asyncio.create_task(slow.request({"sleep": 3}))
        await fast.request({"echo": {"text": "warm-up"}})
        for n in range(3):
            reply = await fast.request({"square": n, "div": {"a": n, "b": 1}})
            assert (reply["square"], reply["div"]) == (n * n, n)
            assert (await fast.request({"echo": {"text": str(n)}}))["echo"] == {"text": str(n)}
            assert not slow_reply.done()
        assert (await slow_reply)["sleep"] == 3


@over_every_server
async def test_malformed_frames_do_not_close_the_connection(daphne, kind):
    """Each bad frame gets its error; the connection keeps serving."""
    server = serve(daphne, kind)
    async with open_client(server) as ws:
        client = Client(ws)
        cases = [
            ("not json", "invalid_json"),
            ("[1, 2]", "invalid_request"),
            ('{"echo": {"text": "x"}, "request_id": true}', "invalid_request"),
            (b'{"echo": {"text": "x"}}', "invalid_request"),
        ]
        for frame, code in cases:
            assert (await client.error_reply(frame))["errors"]["request"]["code"] == code
        reply = await client.request({"echo": {"text": "a\ud800b"}, "nope": {}})
        assert reply["echo"] == {"text": "a\ud800b"}
        assert reply["errors"]["unimplemented"] == ["nope"]
        assert (await client.request({"echo": {"text": "still open"}}))["echo"]["text"] == (
            "still open"
        )


@over_every_server
async def test_the_wire_rules_of_requests_and_replies(daphne, kind):
    """docs/protocol.md's requests and replies, frame by frame, as tests/test_protocol.py
    checks them in-process: request_id copied verbatim (type and value), a lone request_id
    answered, an invalid request_id or a reserved key refused (the id echoed only when
    valid), a failed request without request_id still answered, one reply per request."""
    server = serve(daphne, kind)
    async with open_client(server) as ws:
        client = Client(ws)
        for request_id in ["abc", "007", "", 0, -3, 2**70 + 1, "ünï ✓"]:
            await ws.send(json.dumps({"echo": {"text": "hi"}, "request_id": request_id}))
            reply = await client.receive()
            assert reply == {"echo": {"text": "hi"}, "request_id": request_id}
            assert type(reply["request_id"]) is type(request_id)
        await ws.send('{"request_id": "lonely"}')
        assert await client.receive() == {"request_id": "lonely"}
        for bad_id in ["true", "1.5", "null", "[1]"]:
            reply = await client.error_reply(f'{{"echo": {{"text": "x"}}, "request_id": {bad_id}}}')
            assert set(reply) == {"errors"}, bad_id
            assert reply["errors"]["request"]["code"] == "invalid_request"
        await ws.send(json.dumps({"echo": {"text": "x"}, "errors": {}, "request_id": "r1"}))
        reply = await client.receive()
        assert set(reply) == {"errors", "request_id"} and reply["request_id"] == "r1"
        assert reply["errors"]["request"]["code"] == "invalid_request"
        await ws.send(json.dumps({"nope": {}}))
        reply = await client.receive()
        assert "request_id" not in reply
        assert reply["errors"]["nope"]["code"] == "unknown_command"
        reply = await client.request({"square": 4, "echo": {"text": "y"}, "div": {"a": 1, "b": 0}})
        assert (reply["square"], reply["echo"]) == (16, {"text": "y"})
        assert set(reply["errors"]) == {"div"}
        assert (await client.request({"echo": {"text": "still open"}}))["echo"]["text"] == (
            "still open"
        )
