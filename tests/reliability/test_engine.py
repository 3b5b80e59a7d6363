"""The engine (``manage.py wscommands_engine``, picows) beside daphne on one Redis: one
cluster, the same protocol, the same protections as the ASGI path."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.require import require
from tests.scaleout.client import WSClient
from tests.scaleout.test_resume import RESUME, announced, arrived, payloads, positions
from tests.test_e2e import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.redis]


@pytest.fixture(autouse=True)
def _picows() -> None:
    require("picows")


@pytest.fixture
def cluster(own_redis, live):
    """``cluster(**limits)``: a daphne and an engine process on one throwaway Redis."""

    def start(args: tuple[str, ...] = (), **limits):
        env = {"REDIS_URL": own_redis.url}
        return live(env, **limits), live(env, kind="engine", args=args, **limits)

    return start


async def test_engine_and_daphne_serve_one_cluster(cluster):
    """Echo on the engine; a broadcast from either side reaches the clients of both; the
    engine's clients are in the cluster's presence."""
    daphne, engine = cluster()
    on_daphne = await WSClient.open(daphne.ws)
    on_engine = [await WSClient.open(engine.ws) for _ in range(2)]
    # Registered before its 101 (as under daphne): a broadcast sent once the handshake has
    # completed reaches it, with no request of its own in between.
    await on_daphne.call("probe.broadcast", message={"first": True})
    for client in on_engine:
        await client.push("first")
    reply = await on_engine[0].request({"echo": {"text": "héllo"}, "square": 3})
    assert (reply["echo"], reply["square"]) == ({"text": "héllo"}, 9)
    engine_ids = [(await c.call("whoami"))["connection_id"] for c in on_engine]
    assert set(engine_ids) <= set(await on_daphne.call("probe.presence"))

    await on_engine[0].call("probe.broadcast", message={"from": "engine"})
    await on_daphne.push("from", lambda v: v == "engine")
    await on_engine[1].push("from", lambda v: v == "engine")  # the frame built once, twice
    await on_daphne.call("probe.broadcast", message={"from": "daphne"})
    for client in on_engine:
        await client.push("from", lambda v: v == "daphne")

    await on_daphne.call("probe.join", group="room")
    await on_engine[1].call("probe.join", group="room")
    await on_engine[0].call("probe.group", group="room", message={"to": "room"})
    await on_daphne.push("to")
    await on_engine[1].push("to")
    assert not on_engine[0].received("to")
    for client in [on_daphne, *on_engine]:
        await client.close()


async def test_a_resumable_engine_client_gets_what_daphne_sent_while_it_was_away(cluster):
    daphne, engine = cluster()
    client = await WSClient.open(engine.ws + "?resume=1")
    await announced(client, "all")
    sender = await WSClient.open(daphne.ws)
    await sender.call("probe.broadcast", message={"b": "before"})
    await arrived(client, "b", "before")
    before = positions(client)
    await client.close()
    for n in range(3):
        await sender.call("probe.broadcast", message={"b": n})
    back = await WSClient.open(engine.ws + "?resume=1")
    result = (await back.request({RESUME: {"streams": before}}))[RESUME]
    assert result["all"]["recovered"] is True, result
    assert payloads(back.pushes, "b") == [0, 1, 2]
    await sender.call("probe.broadcast", message={"b": "live"})
    await arrived(back, "b", "live")
    assert payloads(back.pushes, "b") == [0, 1, 2, "live"]
    for c in (sender, back):
        await c.close()


async def test_the_session_cookie_of_a_login_on_daphne_identifies_the_user(cluster):
    daphne, engine = cluster()
    session_key, _ = await asyncio.to_thread(log_in, daphne, "rel", "pw")
    client = await WSClient.open(engine.ws, session_key=session_key)
    who = await client.call("whoami")
    assert (who["authenticated"], who["username"]) == (True, "rel")
    stranger = await WSClient.open(engine.ws, session_key="not-a-session")
    assert (await stranger.call("whoami"))["authenticated"] is False
    await client.close()
    await stranger.close()


async def test_origin_and_path_are_checked_before_the_handshake_opens(cluster):
    _, engine = cluster()
    for origin in ("http://evil.example", "null", f"http://127.0.0.1:{engine.port + 1}"):
        with pytest.raises(InvalidStatus) as info:
            await connect(engine.ws, origin=origin, open_timeout=10)
        assert info.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as info:
        await connect(engine.ws.replace("/ws/", "/other/"), open_timeout=10)
    assert info.value.response.status_code == 404
    same_site = await WSClient.open(engine.ws, origin=f"http://127.0.0.1:{engine.port}")
    assert (await same_site.call("echo", text="ok")) == {"text": "ok"}
    await same_site.close()


async def raw_answer(port: int, request: bytes) -> bytes:
    """What the engine answers a raw request (read until it closes the connection)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    async with asyncio.timeout(10):
        answer = await reader.read()
    writer.close()
    return answer


async def test_bad_upgrade_requests_get_an_http_error_never_a_traceback(cluster):
    _, engine = cluster(args=("--handshake-timeout", "0.5"))
    cases = {
        b"NOT HTTP AT ALL\r\n\r\n": b"400",
        b"GET /ws/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n": b"400",  # no Upgrade
        b"POST /ws/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n": b"405",
        b"GET /ws/ HTTP/1.1\r\nHost: 127.0.0.1\r\n": b"408",  # never finished
        b"GET /ws/ HTTP/1.1\r\nX: " + b"x" * 20_000 + b"\r\n\r\n": b"431",
    }
    for request, status in cases.items():
        answer = await raw_answer(engine.port, request)
        assert answer.startswith(b"HTTP/1.1 " + status), (request, answer)
    client = await WSClient.open(engine.ws)  # still serving
    assert (await client.call("echo", text="ok")) == {"text": "ok"}
    await client.close()
    assert "Traceback" not in engine.log()


async def test_frames_over_the_size_limit_close_with_4413(cluster):
    _, engine = cluster(args=("--max-frame-size", "65536"), MAX_MESSAGE_SIZE=1024)
    client = await WSClient.open(engine.ws)
    await client.ws.send(json.dumps({"echo": {"text": "x" * 2000}}))
    assert await client.wait_closed() == 4413
    fragmented = await WSClient.open(engine.ws)
    await fragmented.ws.send(iter(["[" * 1, "x" * 600, "y" * 600]))  # over it only together
    assert await fragmented.wait_closed() == 4413
    huge = await WSClient.open(engine.ws)
    await huge.ws.send("z" * 70000)  # over the engine's own frame cap: refused unread
    assert await huge.wait_closed() == 1009


def masked_text_frame(payload: bytes) -> bytes:
    """A client's text frame (under 126 bytes) with a zero mask: the payload as it is."""
    assert len(payload) < 126
    return bytes([0x81, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


async def test_a_client_over_the_rate_is_refused_then_closed_with_4429(cluster):
    """Past its burst a frame is refused with rate_limited (its request_id, retry_after) and
    the socket rests; past RATE_LIMIT_CLOSE_AFTER refusals in a row it is closed with 4429."""
    _, engine = cluster(RATE_LIMIT=0.5, RATE_LIMIT_BURST=2, RATE_LIMIT_CLOSE_AFTER=100)
    client = await WSClient.open(engine.ws)
    replies = [asyncio.create_task(client.request({"echo": {"text": str(n)}})) for n in (1, 2)]
    assert [r["echo"] for r in await asyncio.gather(*replies)] == [{"text": "1"}, {"text": "2"}]
    await client.ws.send(json.dumps({"echo": {"text": "3"}, "request_id": "third"}))
    refused = await client.push("errors", lambda e: e["request"]["code"] == "rate_limited")
    assert refused["request"]["details"]["retry_after"] > 0
    assert client.ws.close_code is None
    _, strict = cluster(RATE_LIMIT=0.2, RATE_LIMIT_BURST=2, RATE_LIMIT_CLOSE_AFTER=1)
    closed = await WSClient.open(strict.ws)
    # Four frames in one write, so they are read together: the resting socket cannot let a
    # token come back between the third and the fourth.
    frames = [json.dumps({"echo": {"text": str(n)}, "request_id": n}).encode() for n in range(4)]
    closed.ws.transport.write(b"".join(masked_text_frame(f) for f in frames))
    assert await closed.wait_closed() == 4429
    await client.close()


async def forwarded_for(url: str, address: str) -> WSClient:
    """A client whose request says (as a proxy would) that it comes from ``address``."""
    headers = {"X-Forwarded-For": address}
    return WSClient(await connect(url, additional_headers=headers, open_timeout=10))


async def test_per_ip_caps_count_forwarded_clients_of_trusted_proxies_only(cluster):
    _, trusting = cluster(MAX_CONNECTIONS_PER_IP=1)  # trusts 127.0.0.1 by default
    first = await forwarded_for(trusting.ws, "10.0.0.1")
    other = await forwarded_for(trusting.ws, "10.0.0.2")
    assert (await other.call("echo", text="x")) == {"text": "x"}
    again = await forwarded_for(trusting.ws, "10.0.0.1")
    assert await again.wait_closed() == 4429
    _, wary = cluster(args=("--forwarded-allow-ips", ""), MAX_CONNECTIONS_PER_IP=1)
    one = await forwarded_for(wary.ws, "10.0.0.3")
    forged = await forwarded_for(wary.ws, "10.0.0.4")
    assert await forged.wait_closed() == 4429  # both are 127.0.0.1 to it
    for client in (first, other, one):
        await client.close()
