"""RedisBackend against a real Redis: JSON state, atomic updates, presence, and faults."""

from __future__ import annotations

import asyncio
import secrets

import pytest
import redis

from wscommands.backends import BackendUnavailable
from wscommands.backends.redis import KEEP_UNREAPED, RedisBackend

pytestmark = pytest.mark.redis

#: A guard against hangs, far above the 2 s socket timeouts; not a performance bound.
HANG = 15


@pytest.fixture
async def backend(redis_url):
    backend = RedisBackend({"address": redis_url}, prefix=f"t{secrets.token_hex(4)}")
    yield backend
    await backend.close()


async def test_state_is_json_and_namespaced(backend, redis_url):
    """Values come back as JSON copies; keys live in the prefix's hash only."""
    await backend.update_global_state({"a": {"x": [1, 2]}, "b": "text", "c": None})
    value = await backend.get_global_state("a")
    value["x"].append(3)
    assert await backend.get_global_state("a") == {"x": [1, 2]}
    assert await backend.get_global_state() == {"a": {"x": [1, 2]}, "b": "text", "c": None}
    assert await backend.get_global_state("missing") is None
    other = RedisBackend({"address": redis_url}, prefix="another")
    assert await other.get_global_state("a") is None
    await other.close()


async def test_update_is_all_or_none(backend):
    """A mapping with one value that is not JSON writes nothing."""
    await backend.update_global_state({"a": 1})
    with pytest.raises(TypeError):
        await backend.update_global_state({"a": 2, "b": object()})
    assert await backend.get_global_state() == {"a": 1}


async def test_increment_semantics(backend):
    """Ints stay exact ints (64-bit, like INCRBY); a float anywhere makes a float."""
    assert await backend.increment_global_state("n") == 1
    assert await backend.increment_global_state("n", 2**62) == 2**62 + 1
    assert await backend.increment_global_state("f", 0.5) == 0.5
    assert await backend.increment_global_state("f", 1) == 1.5
    result = await backend.increment_global_state("g", 1.5)
    result = await backend.increment_global_state("g", 1.5)
    assert result == 3.0 and isinstance(result, float)
    assert await backend.get_global_state("g") == 3.0
    await backend.update_global_state({"s": "text"})
    with pytest.raises(TypeError):
        await backend.increment_global_state("s")
    with pytest.raises(TypeError):
        await backend.increment_global_state("n", True)


async def test_concurrent_increments_lose_nothing(backend):
    """Many increments at once from several clients (separate connections) sum exactly."""
    clients = [RedisBackend(backend.host, prefix=backend.state_key.split(":")[0]) for _ in "abcd"]
    results = await asyncio.gather(
        *(c.increment_global_state("hits") for c in clients for _ in range(100))
    )
    assert sorted(results) == list(range(1, 401))
    for client in clients:
        await client.close()


async def test_presence_expires_with_the_heartbeat(backend):
    """A process that stops renewing its heartbeat disappears, entries and all."""
    await backend.presence_write("alive", 30, {"c1": '{"connection_id": "c1"}'})
    await backend.presence_write("dying", 0.2, {"c2": '{"connection_id": "c2"}'})
    assert sorted(await backend.presence_entries()) == [
        '{"connection_id": "c1"}',
        '{"connection_id": "c2"}',
    ]
    while len(await backend.presence_entries()) > 1:
        await asyncio.sleep(0.05)
    assert await backend.presence_entries() == ['{"connection_id": "c1"}']
    assert await backend.presence_write("alive", 30, remove=["c1"]) == 0


async def test_a_dead_process_is_reaped_once(backend):
    """Its entries go to exactly one of the reapers racing for them, then it is forgotten."""
    await backend.presence_write("alive", 30, {"c1": "1"})
    await backend.presence_write("dying", 0.2, {"c2": "2", "c3": "3"})
    dead, next_expiry = await backend.presence_reap()
    assert dead == {} and 0 < next_expiry <= 0.2  # "dying" expires first
    while len(await backend.presence_entries()) > 1:
        await asyncio.sleep(0.05)
    results = await asyncio.gather(*(backend.presence_reap() for _ in range(5)))
    reaped = [dead for dead, _ in results if dead]
    assert len(reaped) == 1 and {p: sorted(e) for p, e in reaped[0].items()} == {
        "dying": ["2", "3"]
    }
    assert all(29 < expiry <= 30 for _, expiry in results)  # now "alive" is next
    assert await backend.presence_reap() == ({}, pytest.approx(30, abs=1))
    await backend.presence_clear("alive")
    assert await backend.presence_reap() == ({}, None)


async def test_presence_of_a_dead_process_waits_for_a_late_reaper(backend, redis_url):
    """Its entries outlive its heartbeat (by KEEP_UNREAPED), not only by its own short TTL:
    a reaper may wake long after (its own PRESENCE_TTL / 3), and must find them to announce
    their leave."""
    await backend.presence_write("dying", 0.1, {"c1": "1"})
    await asyncio.sleep(0.5)  # the late reaper: past twice the dead process's TTL
    assert await backend.presence_entries() == []  # readers skip it all the same
    assert await backend.presence_reap() == ({"dying": ["1"]}, None)
    client = redis.Redis.from_url(redis_url)
    assert not client.exists(f"{backend.process_prefix}dying")  # reaped: nothing left
    await backend.presence_write("alive", 30, {"c2": "2"})
    left = client.pttl(f"{backend.process_prefix}alive") / 1000
    assert 30 + KEEP_UNREAPED - 5 < left <= 30 + KEEP_UNREAPED  # bounded if nobody reaps
    client.close()
    await backend.presence_clear("alive")


async def test_redis_down_raises_unavailable_and_recovers(throwaway_redis):
    """Stopped Redis: BackendUnavailable promptly; restarted: the same backend works again."""
    backend = RedisBackend({"address": throwaway_redis.url})
    await backend.update_global_state({"k": 1})
    throwaway_redis.stop()
    async with asyncio.timeout(HANG):
        with pytest.raises(BackendUnavailable):
            await backend.get_global_state("k")
        with pytest.raises(BackendUnavailable):
            await backend.increment_global_state("k")
    throwaway_redis.start()  # same port, empty (no persistence)
    assert await backend.increment_global_state("k") == 1
    await backend.close()


async def test_stalled_redis_raises_unavailable_and_recovers(throwaway_redis):
    """A frozen Redis (SIGSTOP) times out into BackendUnavailable instead of hanging."""
    backend = RedisBackend({"address": throwaway_redis.url})
    await backend.update_global_state({"k": 1})
    throwaway_redis.pause()
    try:
        async with asyncio.timeout(HANG):
            with pytest.raises(BackendUnavailable):
                await backend.get_global_state("k")
    finally:
        throwaway_redis.resume()
    assert await backend.get_global_state("k") == 1
    await backend.close()
