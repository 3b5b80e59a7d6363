"""Resumable delivery under races, through two real server processes and Redis (issue 18),
on daphne and on the engine (whose handshake gate registers a connection its own way;
uvicorn's path is daphne's, and these races are slow: test_resume runs on uvicorn too).

- A push sent as soon as a resumable client's handshake completed reaches it live, after a
  first announcement that is below it.
- Pushes to one stream from publishers on both processes reach a resumable client in offset
  order, contiguous from its announcement: none overtaken and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from tests.live import Server
from tests.scaleout.client import WSClient

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.parametrize("kind", ["daphne", "engine"], indirect=True),
]

POSITION, STREAMS = "wscommands.position", "wscommands.streams"


def all_offsets(client: WSClient) -> tuple[int | None, list[int]]:
    """The first announced offset of ``all`` and the offsets of its pushes, as received."""
    announced: int | None = None
    offsets: list[int] = []
    for push in client.pushes:
        position = (push.get(STREAMS) or {}).get("all")
        if position is not None and announced is None:
            announced = position["offset"]
        if push.get(POSITION, {}).get("stream") == "all":
            offsets.append(push[POSITION]["offset"])
    return announced, offsets


@contextlib.asynccontextmanager
async def slow_redis(url: str, delay: float) -> AsyncIterator[str]:
    """A TCP proxy to the Redis of ``url`` that holds each request ``delay`` seconds: the
    URL of Redis through it (the fault injected: a backend far away)."""
    parts = urlsplit(url)

    async def pump(reader, writer, hold: float) -> None:
        try:
            while data := await reader.read(65536):
                if hold:
                    await asyncio.sleep(hold)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def serve(reader, writer) -> None:
        up_reader, up_writer = await asyncio.open_connection(parts.hostname, parts.port or 6379)
        await asyncio.gather(pump(reader, up_writer, delay), pump(up_reader, writer, 0))

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield urlunsplit(parts._replace(netloc=f"127.0.0.1:{port}"))
    finally:
        server.close()


async def test_a_push_right_after_the_handshake_reaches_a_resumable_client(
    servers, clients, redis_url
):
    # A's history backend answers 100 ms late (its channel layer does not): the window
    # between the handshake and the first announcement is wide open.
    # A prefix of its own: Pub/Sub channels are shared by every database of a Redis.
    prefix = f"races{secrets.token_hex(3)}"
    async with slow_redis(redis_url, 0.1) as slow_url:
        slow = json.dumps({"REDIS_URL": {"address": slow_url}, "PREFIX": prefix})
        a = servers(WSCOMMANDS_LIMITS=slow)
        b = servers(WSCOMMANDS_LIMITS=json.dumps({"PREFIX": prefix}))
        await _right_after_the_handshake(a, b, clients)


async def _right_after_the_handshake(a: Server, b: Server, clients) -> None:
    sender = await clients(b.ws)
    t = secrets.token_hex(4)
    for i in range(20):
        client = await clients(a.ws + "?resume=1")
        # As soon as the handshake completed, the other process broadcasts.
        await sender.call("op.broadcast", message={"b": f"{t}-{i}"})
        text = f"{t}-{i}"
        try:
            await client.wait_for(lambda ps, x=text: any(p.get("b") == x for p in ps), 15)
        except TimeoutError:
            pytest.fail(f"round {i}: {text} never arrived; received {client.pushes}")
        pushed = next(p for p in client.pushes if p.get("b") == text)
        announced = all_offsets(client)[0]
        assert announced is not None and announced < pushed[POSITION]["offset"], (
            announced,
            pushed,
        )
        await client.close()


async def _publish(sender: WSClient, tag: str, n: int) -> None:
    for i in range(n):
        await sender.call("op.broadcast", message={"o": f"{tag}-{i}"})


async def test_pushes_from_both_processes_arrive_in_order_without_a_hole(servers, clients):
    limits = json.dumps({"PREFIX": f"races{secrets.token_hex(3)}"})
    a, b = servers(WSCOMMANDS_LIMITS=limits), servers(WSCOMMANDS_LIMITS=limits)
    observers = [await clients(a.ws + "?resume=1"), await clients(b.ws + "?resume=1")]
    for observer in observers:
        await observer.wait_for(lambda _, o=observer: all_offsets(o)[0] is not None, timeout=15)
    senders = [await clients(server.ws) for server in (a, b) for _ in range(4)]
    t = secrets.token_hex(4)
    n = 60
    await asyncio.gather(*(_publish(s, f"{t}-{k}", n) for k, s in enumerate(senders)))
    total = n * len(senders)

    def received(observer: WSClient) -> int:
        return sum(1 for p in observer.pushes if str(p.get("o", "")).startswith(t))

    for observer in observers:
        await observer.wait_for(lambda _, o=observer: received(o) == total, timeout=30)
        announced, offsets = all_offsets(observer)
        assert offsets == list(range(announced + 1, announced + 1 + len(offsets))), offsets


async def _resume(client: WSClient, streams: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Send a resume; its reply and how many pushes were replayed before it."""
    before = len(client.pushes)
    reply = await client.request({"wscommands.resume": {"streams": streams}})
    replayed = [p for p in client.pushes[before:] if POSITION in p]
    return reply["wscommands.resume"], len(replayed)


async def test_a_resume_never_sends_a_push_twice(servers, clients):
    """Resuming again from the same position replays nothing: what the connection was sent
    (live or by a replay) is never sent again (issue 18: 108 frames brought back 54,002)."""
    limits = json.dumps({"PREFIX": f"races{secrets.token_hex(3)}"})
    a = servers(WSCOMMANDS_LIMITS=limits)
    sender = await clients(a.ws)
    t = secrets.token_hex(4)
    for i in range(40):
        await sender.call("op.broadcast", message={"r": f"{t}-{i}"})
    # Delivered on the process (the sender gets its broadcasts too) before the client comes.
    await sender.wait_for(lambda ps: any(p.get("r") == f"{t}-39" for p in ps), timeout=15)
    client = await clients(a.ws + "?resume=1")
    await client.wait_for(lambda _: all_offsets(client)[0] is not None, timeout=15)
    announced = all_offsets(client)[0]
    epoch = next(p[STREAMS]["all"]["epoch"] for p in client.pushes if STREAMS in p)
    behind = {"all": {"epoch": epoch, "offset": announced - 30}}
    result, replayed = await _resume(client, behind)
    assert result["all"]["recovered"] is True and replayed == 30, (result, replayed)
    for _ in range(5):
        result, replayed = await _resume(client, behind)
        assert result["all"]["recovered"] is True and replayed == 0
    # A push sent live after that is delivered once; asking for it again brings nothing.
    await sender.call("op.broadcast", message={"r": f"{t}-live"})
    await client.wait_for(lambda ps: any(p.get("r") == f"{t}-live" for p in ps), timeout=15)
    result, replayed = await _resume(client, behind)
    assert replayed == 0
    texts = [p["r"] for p in client.pushes if str(p.get("r", "")).startswith(t)]
    assert len(texts) == len(set(texts)) == 31


async def test_replays_over_the_budget_are_refused_whole(servers, clients):
    """Past RESUME_PUSHES in an interval, a stream's replay is refused with rate_limited and
    retry_after, never sent in part; another stream that fits is replayed whole."""
    limits = json.dumps(
        {
            "PREFIX": f"races{secrets.token_hex(3)}",
            "HISTORY_SIZE": 50,
            "RESUME_PUSHES": 60,
            "RESUME_INTERVAL": 3600,
        }
    )
    a = servers(WSCOMMANDS_LIMITS=limits)
    sender = await clients(a.ws)
    t, group = secrets.token_hex(4), f"budget-{secrets.token_hex(3)}"
    client = await clients(a.ws + "?resume=1")
    await client.call("op.join", group=group)
    await client.wait_for(
        lambda ps: any(f"group:{group}" in (p.get(STREAMS) or {}) for p in ps), timeout=15
    )
    await client.close()  # away while 40 pushes go to each stream
    for i in range(40):
        await sender.call("op.broadcast", message={"r": f"{t}-{i}"})
        await sender.call("op.group", group=group, message={"r": f"{t}-g{i}"})
    # The process has delivered every broadcast (the sender gets them too) before the client
    # is back: one still on its way would reach it live and shrink the replay to fit.
    await sender.wait_for(lambda ps: any(p.get("r") == f"{t}-39" for p in ps), timeout=15)
    positions: dict[str, Any] = {}
    for push in client.pushes:
        positions.update(push.get(STREAMS) or {})
    back = await clients(a.ws + "?resume=1")
    await back.call("op.join", group=group)
    result, replayed = await _resume(back, positions)
    assert result["all"]["recovered"] is True
    assert result[f"group:{group}"]["recovered"] is False
    assert result[f"group:{group}"]["reason"] == "rate_limited"
    assert result[f"group:{group}"]["retry_after"] > 0
    assert replayed == 40  # all of `all`, nothing of the group


async def test_joining_streams_that_are_never_written_creates_nothing(servers, clients, redis_url):
    """A resumable client joins 30 groups nobody writes to: each is announced as "no push
    yet" and Redis holds nothing for them (on da8ca55 each join created a stream)."""
    prefix = f"races{secrets.token_hex(3)}"
    a = servers(WSCOMMANDS_LIMITS=json.dumps({"PREFIX": prefix}))
    client = await clients(a.ws + "?resume=1")
    for i in range(30):
        await client.call("op.join", group=f"quiet-{i}")
    await client.wait_for(
        lambda ps: any("group:quiet-29" in (p.get(STREAMS) or {}) for p in ps), timeout=15
    )
    announced = {}
    for push in client.pushes:
        announced.update(push.get(STREAMS) or {})
    assert announced["group:quiet-0"] == {"epoch": "", "offset": 0}
    assert redis.Redis.from_url(redis_url).keys(f"{prefix}:{{group:*") == []
