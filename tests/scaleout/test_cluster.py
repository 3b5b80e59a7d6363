"""Every messaging, global-state and presence operation across two daphne processes."""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest

from tests.scaleout.conftest import http_login

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.postgres]


def tag() -> str:
    return secrets.token_hex(4)


async def whoami(client) -> dict:
    return await client.call("whoami")


async def test_broadcast_reaches_every_process(cluster, clients):
    """A broadcast from A reaches B's clients; everyone_else skips only the sender."""
    a, b = cluster
    sender, other_a = await clients(a.ws), await clients(a.ws)
    on_b = [await clients(b.ws), await clients(b.ws)]
    t = tag()
    await sender.call("op.broadcast", message={"hello": t}, everyone_else=True)
    for client in [other_a, *on_b]:
        assert await client.push("hello", lambda v: v == t) == t
    # The marker follows the first broadcast from the same sender: once it is here, the
    # first one would have been here too.
    await sender.call("op.broadcast", message={"marker": t})
    await sender.push("marker", lambda v: v == t)
    assert not sender.received("hello", lambda v: v == t)

    await on_b[0].call("op.broadcast", message={"module": t}, via="module")
    for client in [sender, other_a, *on_b]:
        assert await client.push("module", lambda v: v == t) == t


async def test_send_to_subset_by_id_connection_and_user(cluster, clients):
    """Ids, Connection objects and users (every connection of the user) on any process."""
    a, b = cluster
    ann_key = http_login(a, "ann")  # a session made on A, used on both: PostgreSQL sessions
    ann_a, ann_b = await clients(a.ws, ann_key), await clients(b.ws, ann_key)
    bob_b = await clients(b.ws, http_login(b, "bob"))
    anon_a = await clients(a.ws)
    ann = await whoami(ann_b)
    assert ann["username"] == "ann" and (await whoami(ann_a))["id"] == ann["id"]
    assert (await whoami(bob_b))["username"] == "bob"

    t = tag()
    target = (await whoami(anon_a))["connection_id"]
    await bob_b.call("op.subset", ids=[target], message={"by_id": t})
    assert await anon_a.push("by_id") == t

    await bob_b.call("op.subset", users=[ann["id"]], message={"by_user": t}, via="module")
    assert await ann_a.push("by_user") == t
    assert await ann_b.push("by_user") == t

    await anon_a.call("op.subset", itself=True, message={"by_connection": t})
    assert await anon_a.push("by_connection") == t

    await bob_b.call("op.broadcast", message={"marker": t})
    for client in (anon_a, bob_b):
        await client.push("marker", lambda v: v == t)
    assert not anon_a.received("by_user") and not bob_b.received("by_user")
    assert not bob_b.received("by_id")


async def test_authenticate_with_a_session_from_the_other_process(cluster, clients):
    """The seed's authenticate command accepts a session created by the other process."""
    a, b = cluster
    client = await clients(b.ws)
    reply = await client.call("authenticate", session_id=http_login(a, "bob"))
    assert reply["authenticate"] == "success" and reply["user"]["username"] == "bob"


async def test_groups_across_processes(cluster, clients):
    """Group messages reach members on both processes, and only members."""
    a, b = cluster
    group = f"room-{tag()}"
    member_a, member_b, outsider_b = await clients(a.ws), await clients(b.ws), await clients(b.ws)
    await member_a.call("op.join", group=group)
    await member_b.call("op.join", group=group)

    await member_b.call("op.group", group=group, message={"say": 1})
    assert await member_a.push("say") == 1
    assert await member_b.push("say") == 1

    await member_a.call("op.group", group=group, message={"say": 2}, everyone_else=True)
    assert await member_b.push("say") == 2

    await member_a.call("op.leave", group=group)
    await outsider_b.call("op.group", group=group, message={"say": 3}, via="module")
    assert await member_b.push("say") == 3

    t = tag()
    for sender in (member_a, member_b):
        await sender.call("op.broadcast", message={"marker": t})
    for client in (member_a, outsider_b):
        await client.push("marker", lambda v: v == t)
        await client.push("marker", lambda v: v == t)
    assert not member_a.received("say")  # not 2 (sent everyone_else) nor 3 (after leaving)
    assert not outsider_b.received("say")
    assert not member_a.received("say", lambda v: v == 2)


async def test_global_state_is_shared(cluster, clients):
    """Updates on A are read on B, by connections and by the module-level functions."""
    a, b = cluster
    on_a, on_b = await clients(a.ws), await clients(b.ws)
    key = f"k-{tag()}"
    await on_a.call("op.update", mapping={key: {"x": [1, 2]}, f"{key}.n": 5})
    assert await on_b.call("op.get", key=key) == {"x": [1, 2]}
    assert await on_b.call("op.get", key=f"{key}.n", via="module") == 5
    whole = await on_b.call("op.get")
    assert whole[key] == {"x": [1, 2]} and whole[f"{key}.n"] == 5
    await on_b.call("op.update", mapping={key: "replaced"}, via="module")
    assert await on_a.call("op.get", key=key) == "replaced"
    assert await on_a.call("op.increment", key=f"{key}.n", amount=2.5) == 7.5


async def test_concurrent_increments_from_both_processes_sum_exactly(cluster, clients):
    """8 clients on two processes increment one key 400 times at once: no lost update."""
    a, b = cluster
    key = f"counter-{tag()}"
    pool = [await clients(server.ws) for server in (a, b) for _ in range(4)]

    async def hammer(client, n=50):
        replies = await asyncio.gather(
            *(client.request({"op.increment": {"key": key}}) for _ in range(n))
        )
        return [reply["op.increment"] for reply in replies]

    values = [v for values in await asyncio.gather(*map(hammer, pool)) for v in values]
    assert sorted(values) == list(range(1, 401))
    assert await pool[0].call("op.get", key=key) == 400


def _ids(entries: list[dict]) -> list[str]:
    return [entry["connection_id"] for entry in entries]


async def until(check, timeout: float = 15, interval: float = 0.1):
    """Poll the async ``check()`` until it returns something truthy (or fail)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(interval)


async def test_presence_across_processes(cluster, clients):
    """Who is connected, where and in which group, seen from the other process."""
    a, b = cluster
    ann = await clients(a.ws, http_login(a, "ann"))
    anon = await clients(b.ws)
    watcher = await clients(b.ws)
    ann_id = (await whoami(ann))["connection_id"]
    anon_id = (await whoami(anon))["connection_id"]
    group = f"room-{tag()}"

    async def both_listed():  # presence is written in the background, right after the handshake
        everyone = await watcher.call("op.presence")
        return [e for e in everyone if e["connection_id"] in (ann_id, anon_id)][1:] and everyone

    everyone = await until(both_listed)
    mine = [e for e in everyone if e["connection_id"] in (ann_id, anon_id)]
    assert _ids(mine) == [ann_id, anon_id]  # sorted by connected_since
    assert mine[0]["username"] == "ann" and isinstance(mine[0]["user_id"], int)
    assert mine[1]["user_id"] is None and mine[1]["username"] is None
    assert set(mine[0]) == {"connection_id", "user_id", "username", "connected_since"}
    assert mine[0]["connected_since"] <= mine[1]["connected_since"] <= time.time()

    # Reads may lag the store by up to presence.READ_MAX_AGE (one read serves every query
    # for that long), and writes follow in the background: poll.
    await ann.call("op.join", group=group)
    await anon.call("op.join", group=group)

    async def members(expected, via="conn"):
        return _ids(await watcher.call("op.presence", group=group, via=via)) == expected

    await until(lambda: members([ann_id, anon_id], via="module"))
    await ann.call("op.leave", group=group)
    await until(lambda: members([anon_id]))

    await ann.close()

    async def ann_gone():
        return ann_id not in _ids(await watcher.call("op.presence"))

    await until(ann_gone)
