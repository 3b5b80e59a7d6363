"""Resumable delivery through real server processes and Redis (docs/protocol.md).

Each test runs its own pair of processes (some are restarted or killed), sharing the test
Redis and PostgreSQL database of the scale-out suite, once per server kind (daphne, uvicorn,
the engine); users sign in through the cluster's daphne (the engine serves no HTTP).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
from collections.abc import Callable
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.live import SERVERS, Server
from tests.scaleout.client import WSClient

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.parametrize("kind", SERVERS, indirect=True),
]

POSITION, STREAMS, RESUME = "wscommands.position", "wscommands.streams", "wscommands.resume"


def resumable(server: Server) -> str:
    return server.ws + "?resume=1"


def tag() -> str:
    return secrets.token_hex(4)


def positions(client: WSClient) -> dict[str, dict[str, Any]]:
    """The last position the client knows per stream, from what it received, in order."""
    known: dict[str, dict[str, Any]] = {}
    for push in client.pushes:
        for stream, position in (push.get(STREAMS) or {}).items():
            if position is None:
                known.pop(stream, None)
            else:
                known[stream] = position
        if POSITION in push:
            p = push[POSITION]
            known[p["stream"]] = {"epoch": p["epoch"], "offset": p["offset"]}
    return known


async def announced(client: WSClient, *streams: str) -> None:
    """Wait until the client was told the position of each stream."""
    await client.wait_for(lambda _: all(s in positions(client) for s in streams), timeout=15)


async def arrived(client: WSClient, key: str, value: Any) -> None:
    """Wait until a push ``{key: value}`` has arrived (without taking it)."""
    await client.wait_for(lambda pushes: any(p.get(key) == value for p in pushes))


def stream_pushes(client: WSClient, stream: str) -> list[dict[str, Any]]:
    return [p for p in client.pushes if p.get(POSITION, {}).get("stream") == stream]


async def whoami(client: WSClient) -> dict[str, Any]:
    return await client.call("whoami")


async def send_everything(sender: WSClient, ann_pk: int, group: str, t: str, n: int) -> None:
    """n pushes to each of: everyone, the group, ann (as a user); interleaved."""
    for i in range(n):
        await sender.call("op.broadcast", message={"b": f"{t}-{i}"})
        await sender.call("op.group", group=group, message={"g": f"{t}-{i}"})
        await sender.call("op.subset", users=[ann_pk], message={"u": f"{t}-{i}"})


def payloads(pushes: list[dict[str, Any]], key: str) -> list[str]:
    return [p[key] for p in pushes if key in p]


async def member(
    server: Server, clients: Callable[..., Any], key: str, group: str
) -> tuple[WSClient, Any]:
    """A resumable client of ``server`` signed in with session ``key`` that joined ``group``
    and was told the positions of ``all``, its user's stream and the group's: it and its
    user's pk."""
    client = await clients(resumable(server), key)
    pk = (await whoami(client))["id"]
    await client.call("op.join", group=group)
    await announced(client, "all", f"user:{pk}", f"group:{group}")
    return client, pk


async def gone_after_a_broadcast(
    server: Server, clients: Callable[..., Any], text: str
) -> tuple[WSClient, dict[str, dict[str, Any]]]:
    """A resumable client receives the broadcast ``{"b": text}``, then leaves: the sender
    (still connected) and the positions the client left at."""
    client = await clients(resumable(server))
    await announced(client, "all")
    sender = await clients(server.ws)
    await sender.call("op.broadcast", message={"b": text})
    await arrived(client, "b", text)
    before = positions(client)
    await client.close()
    return sender, before


async def test_away_across_a_restart_recovers_every_push_in_order(servers, clients, login):
    """ann (user stream, a group, everyone) is away while her process restarts and pushes go
    out from the other one: on resume she gets each missed push once, in order, then live."""
    a, b = servers(), servers()
    key = login("ann")
    group = f"members-{tag()}"
    ann = await clients(resumable(a), key)
    ann_pk = (await whoami(ann))["id"]
    await announced(ann, "all", f"user:{ann_pk}")
    await ann.call("op.join", group=group)
    await announced(ann, f"group:{group}")
    sender = await clients(b.ws)
    t = tag()
    await send_everything(sender, ann_pk, group, f"{t}-before", 2)
    await arrived(ann, "u", f"{t}-before-1")
    before = positions(ann)
    await ann.close()

    a.stop()
    await send_everything(sender, ann_pk, group, t, 5)
    a.start()

    back = await clients(resumable(a), key)
    reply = await back.request({RESUME: {"streams": before}})
    result = reply[RESUME]
    streams = ["all", f"group:{group}", f"user:{ann_pk}"]
    for stream in streams:
        assert result[stream]["recovered"] is True, result
        # + 5 pushes of the sender (the group may also have the example's chat_left notice)
        assert result[stream]["offset"] >= before[stream]["offset"] + 5, result
        replayed = stream_pushes(back, stream)
        offsets = [p[POSITION]["offset"] for p in replayed]
        assert offsets == list(range(before[stream]["offset"] + 1, result[stream]["offset"] + 1))
    assert payloads(back.pushes, "b") == [f"{t}-{i}" for i in range(5)]
    assert payloads(back.pushes, "g") == [f"{t}-{i}" for i in range(5)]
    assert payloads(back.pushes, "u") == [f"{t}-{i}" for i in range(5)]

    # The group came back: live pushes flow again, once, at the next offset.
    await sender.call("op.group", group=group, message={"g": f"{t}-live"})
    await arrived(back, "g", f"{t}-live")
    live = stream_pushes(back, f"group:{group}")[-1][POSITION]
    assert live["epoch"] == result[f"group:{group}"]["epoch"]
    assert live["offset"] == result[f"group:{group}"]["offset"] + 1
    assert payloads(back.pushes, "g") == [f"{t}-{i}" for i in range(5)] + [f"{t}-live"]


async def test_away_past_the_history_bound_is_told(servers, clients):
    """More pushes than HISTORY_SIZE while away: too_far_behind, the current position, no
    partial replay."""
    a = servers(WSCOMMANDS_LIMITS=json.dumps({"HISTORY_SIZE": 3}))
    t = tag()
    sender, before = await gone_after_a_broadcast(a, clients, f"{t}-first")
    for i in range(5):
        await sender.call("op.broadcast", message={"b": f"{t}-{i}"})
    back = await clients(resumable(a))
    reply = await back.request({RESUME: {"streams": {"all": before["all"]}}})
    entry = reply[RESUME]["all"]
    assert entry == {
        "recovered": False,
        "reason": "too_far_behind",
        "epoch": before["all"]["epoch"],
        "offset": before["all"]["offset"] + 5,
    }
    assert not back.received("b")


async def test_clients_of_a_killed_process_resume_on_the_other(servers, clients, login):
    """kill -9 of A: its clients reconnect to B, resume, and lose nothing sent meanwhile."""
    a, b = servers(), servers()
    key = login("bob")
    group = f"room-{tag()}"
    bob, bob_pk = await member(a, clients, key, group)
    before = positions(bob)
    sender = await clients(b.ws)
    a.stop(signal.SIGKILL)
    t = tag()
    await send_everything(sender, bob_pk, group, t, 4)

    back = await clients(resumable(b), key)
    result = (await back.request({RESUME: {"streams": before}}))[RESUME]
    assert all(entry["recovered"] for entry in result.values()), result
    assert set(result) == {"all", f"user:{bob_pk}", f"group:{group}"}
    for k in ("b", "g", "u"):
        assert payloads(back.pushes, k) == [f"{t}-{i}" for i in range(4)]


async def test_redis_restarted_empty_means_a_new_epoch(servers, clients, throwaway_redis):
    """Redis loses everything: the resume says history_lost, with the new epoch."""
    a = servers(REDIS_URL=throwaway_redis.url)
    t = tag()
    sender, before = await gone_after_a_broadcast(a, clients, f"{t}-0")

    throwaway_redis.stop()
    throwaway_redis.start()
    # The first broadcasts may fail while the layer reconnects; one gets through.
    async with asyncio.timeout(30):
        while True:
            reply = await sender.request({"op.broadcast": {"message": {"b": f"{t}-1"}}})
            if "errors" not in reply:
                break
            await asyncio.sleep(0.2)

    back = await clients(resumable(a))
    entry = (await back.request({RESUME: {"streams": before}}))[RESUME]["all"]
    assert entry["recovered"] is False and entry["reason"] == "history_lost", entry
    assert entry["epoch"] != before["all"]["epoch"]
    # 1, or more if a broadcast was recorded and then refused (unavailable) and retried.
    assert entry["offset"] >= 1


async def test_a_logged_out_session_resumes_nothing(servers, clients, login):
    """Positions of ann's streams, resumed without her session: every stream forbidden, no
    group re-joined, nothing replayed."""
    a = servers()
    key = login("ann")
    group = f"members-{tag()}"
    ann, _ = await member(a, clients, key, group)
    before = positions(ann)
    await ann.close()
    sender = await clients(a.ws)
    await sender.call("op.group", group=group, message={"g": "secret"})

    anonymous = await clients(resumable(a))
    result = (await anonymous.request({RESUME: {"streams": before}}))[RESUME]
    assert result == {stream: {"recovered": False, "reason": "forbidden"} for stream in before}
    assert not anonymous.received("g")
    members = await anonymous.call("op.presence", group=group)
    # ann's own entry may linger for PRESENCE_GRACE; the anonymous client is not a member.
    assert [m for m in members if m["user_id"] is None] == []


async def test_groups_come_back_only_through_the_join_hook(servers, clients):
    """The ops hook keeps members-* groups for logged-in users: an anonymous resume of such
    a group is forbidden, of another group allowed and re-joined."""
    a = servers()
    t = tag()
    member = await clients(resumable(a))
    await member.call("op.join", group=f"open-{t}")
    await announced(member, f"group:open-{t}")
    mine = positions(member)
    refused = await member.request({"op.join": {"group": f"members-{t}"}})
    assert refused["errors"]["op.join"]["code"] == "permission_denied"
    await member.close()

    back = await clients(resumable(a))
    streams = {
        f"group:open-{t}": mine[f"group:open-{t}"],
        f"group:members-{t}": mine[f"group:open-{t}"],
        "nonsense": {"epoch": "x", "offset": 0},
        "all": {"epoch": "x", "offset": "zero"},
    }
    result = (await back.request({RESUME: {"streams": streams}}))[RESUME]
    assert result[f"group:open-{t}"]["recovered"] is True
    assert result[f"group:members-{t}"] == {"recovered": False, "reason": "forbidden"}
    assert result["nonsense"] == {"recovered": False, "reason": "invalid"}
    assert result["all"]["reason"] == "invalid" and "epoch" in result["all"]
    sender = await clients(a.ws)
    await sender.call("op.group", group=f"open-{t}", message={"g": t})
    assert await back.push("g") == t


async def test_resume_errors(servers, clients):
    """A plain connection is told to opt in; a malformed argument is invalid_arguments."""
    a = servers()
    plain = await clients(a.ws)
    reply = await plain.request({RESUME: {"streams": {}}})
    assert reply["errors"][RESUME] == {"code": "client_error", "message": "connect with ?resume=1"}
    client = await clients(resumable(a))
    reply = await client.request({RESUME: {"streams": []}})
    assert reply["errors"][RESUME]["code"] == "invalid_arguments"


async def test_plain_clients_get_todays_frames(servers, clients):
    """Without ?resume=1 the frames are byte for byte what they were: no position, no
    announcements; a resumable client gets the same payload plus its position."""
    a = servers()
    async with connect(a.ws) as plain, connect(resumable(a)) as opted:
        first = json.loads(await asyncio.wait_for(opted.recv(), 10))
        assert set(first) == {STREAMS}
        sender = await clients(a.ws)
        t = tag()
        await sender.call("op.broadcast", message={"hello": t, "n": [1, 2.5, None]})
        raw = await asyncio.wait_for(plain.recv(), 10)
        assert raw == json.dumps({"hello": t, "n": [1, 2.5, None]}, separators=(",", ":"))
        positioned = json.loads(await asyncio.wait_for(opted.recv(), 10))
        assert positioned.pop(POSITION)["stream"] == "all"
        assert positioned == {"hello": t, "n": [1, 2.5, None]}


async def test_everyone_else_keeps_the_senders_offsets_contiguous(servers, clients):
    """A resumable sender left out of its own broadcast gets the position alone."""
    a = servers()
    sender = await clients(resumable(a))
    await announced(sender, "all")
    start = positions(sender)["all"]["offset"]
    t = tag()
    await sender.call("op.broadcast", message={"b": t}, everyone_else=True)
    bare = await sender.push(POSITION, lambda p: p["stream"] == "all")
    assert bare["offset"] == start + 1
    assert not sender.received("b")


async def test_idempotent_retry_runs_once_across_processes(servers, clients, login, redis_url):
    """The same idempotency key on the other process: the recorded reply, not a second run,
    also while the first run is still going."""
    import redis.asyncio as aioredis

    a, b = servers(), servers()
    key = login("ann")
    counter = f"idem-{tag()}"
    first = await clients(a.ws, key)
    retry = await clients(b.ws, key)
    ann_pk = (await whoami(first))["id"]
    idem = secrets.token_hex(16)
    request = {"sleep": {"seconds": 1.0}, "op.increment": {"key": counter}, "idempotency_key": idem}
    running = asyncio.create_task(first.request(request))
    # Wait until A holds the claim (it is running the request), then retry on B.
    store = aioredis.Redis.from_url(redis_url)
    try:
        async with asyncio.timeout(10):
            while await store.hget(f"wscommands:{{i:u:{ann_pk}}}:r", idem) != b"P":
                await asyncio.sleep(0.01)
    finally:
        await store.aclose()
    again = await retry.request(request)
    original = await running
    assert again["op.increment"] == original["op.increment"] == 1
    once_more = await retry.request(request)
    assert once_more["op.increment"] == 1
    assert await retry.call("op.get", key=counter) == 1

    bad = await retry.request({"op.get": {"key": counter}, "idempotency_key": "short"})
    assert bad["errors"]["request"]["code"] == "invalid_request"
