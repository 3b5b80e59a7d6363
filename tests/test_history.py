"""Stream history and idempotency records in both backends (memory and real Redis)."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from redis.crc import key_slot

from wscommands.backends.base import CLAIMED, DONE, PENDING, HistoryBounds
from wscommands.backends.memory import MemoryBackend
from wscommands.backends.redis import RedisBackend
from wscommands.backends.redis_scripts import history_keys, record_keys

BOUNDS = HistoryBounds(size=3, ttl=60, meta_ttl=600)


@pytest.fixture(params=["memory", "redis"])
async def backend(request):
    if request.param == "memory":
        yield MemoryBackend()
        return
    url = request.getfixturevalue("redis_url")
    redis_backend = RedisBackend({"address": url}, prefix=f"t{secrets.token_hex(4)}")
    yield redis_backend
    await redis_backend.close()


def stream() -> str:
    return f"group:g{secrets.token_hex(4)}"


async def test_offsets_grow_by_one_per_push_and_the_epoch_stays(backend):
    """Offsets 1, 2, 3 in one epoch; the position of a new stream is that epoch at 0."""
    s = stream()
    epoch, offset = (await backend.history_positions([s], BOUNDS))[s]
    assert offset == 0
    appended = [await backend.history_append(s, f'{{"n":{i}}}', BOUNDS) for i in range(3)]
    assert appended == [(epoch, 1), (epoch, 2), (epoch, 3)]


async def test_concurrent_appends_never_share_an_offset(backend):
    """50 appends at once get the offsets 1..50, each once."""
    s = stream()
    bounds = HistoryBounds(size=100, ttl=60, meta_ttl=600)
    results = await asyncio.gather(*(backend.history_append(s, "{}", bounds) for _ in range(50)))
    assert sorted(offset for _, offset in results) == list(range(1, 51))
    assert len({epoch for epoch, _ in results}) == 1


async def test_read_after_an_offset(backend):
    """Complete within the bound, too far behind past it, history lost for another epoch."""
    s = stream()
    for i in range(5):
        epoch, _ = await backend.history_append(s, f'{{"n":{i}}}', BOUNDS)
    read = await backend.history_read(s, epoch, 2, BOUNDS)
    assert read.complete and (read.epoch, read.offset) == (epoch, 5)
    assert read.entries == [(3, '{"n":2}'), (4, '{"n":3}'), (5, '{"n":4}')]
    behind = await backend.history_read(s, epoch, 1, BOUNDS)  # offset 2 was trimmed (size 3)
    assert not behind.complete
    up_to_date = await backend.history_read(s, epoch, 5, BOUNDS)
    assert up_to_date.complete and up_to_date.entries == []
    lost = await backend.history_read(s, "another-epoch", 2, BOUNDS)
    assert lost.epoch == epoch and not lost.complete and lost.entries == []


async def test_aged_out_pushes_are_not_replayed_but_the_position_stays(backend):
    """Past HISTORY_TTL the pushes are gone (too far behind) while the epoch and offset stay
    (HISTORY_META_TTL): a quiet stream is resumable without a false history_lost."""
    s = stream()
    short = HistoryBounds(size=10, ttl=0.2, meta_ttl=600)
    epoch, _ = await backend.history_append(s, "{}", short)
    read = await backend.history_read(s, epoch, 0, short)
    assert read.complete and len(read.entries) == 1
    await asyncio.sleep(0.4)  # the only way to let an age bound pass
    aged = await backend.history_read(s, epoch, 0, short)
    assert not aged.complete and aged.entries == [] and (aged.epoch, aged.offset) == (epoch, 1)
    quiet = await backend.history_read(s, epoch, 1, short)
    assert quiet.complete and quiet.epoch == epoch


async def test_idempotency_claim_record_and_bounds(backend):
    """Claimed once, pending for others, then the recorded reply; the oldest records go."""
    owner = f"u:{secrets.token_hex(4)}"
    assert await backend.idempotency_claim(owner, "k1", 10) == (CLAIMED, None)
    assert await backend.idempotency_claim(owner, "k1", 10) == (PENDING, None)
    await backend.idempotency_finish(owner, "k1", '{"x":1}', 60, 2)
    assert await backend.idempotency_claim(owner, "k1", 10) == (DONE, '{"x":1}')
    await backend.idempotency_claim(owner, "big", 10)
    await backend.idempotency_finish(owner, "big", None, 60, 2)
    assert await backend.idempotency_claim(owner, "big", 10) == (DONE, None)
    await backend.idempotency_claim(owner, "k3", 10)
    await backend.idempotency_finish(owner, "k3", "{}", 60, 2)
    # At most 2 records: k1, the oldest, is gone, so a retry of it would run again.
    assert await backend.idempotency_claim(owner, "k1", 10) == (CLAIMED, None)


async def test_idempotency_release_lets_a_retry_run(backend):
    """A claim whose run failed is dropped; a record never is."""
    owner = f"u:{secrets.token_hex(4)}"
    await backend.idempotency_claim(owner, "k", 10)
    await backend.idempotency_release(owner, "k")
    assert await backend.idempotency_claim(owner, "k", 10) == (CLAIMED, None)
    await backend.idempotency_finish(owner, "k", "{}", 60, 10)
    await backend.idempotency_release(owner, "k")
    assert await backend.idempotency_claim(owner, "k", 10) == (DONE, "{}")


async def test_a_running_claim_is_never_evicted_by_the_cap(backend):
    """More finished records than the cap while a claim runs: the finished ones go, the
    running one stays (its retry waits rather than running the request a second time)."""
    owner = f"c:{secrets.token_hex(4)}"
    assert await backend.idempotency_claim(owner, "running", 10) == (CLAIMED, None)
    for n in range(5):
        await backend.idempotency_claim(owner, f"k{n}", 10)
        await backend.idempotency_finish(owner, f"k{n}", "{}", 60, 2)
    assert await backend.idempotency_claim(owner, "running", 10) == (PENDING, None)
    assert await backend.idempotency_claim(owner, "k4", 10) == (DONE, "{}")
    assert await backend.idempotency_claim(owner, "k0", 10) == (CLAIMED, None)


@pytest.mark.parametrize("end", ["finish", "release"])
async def test_a_waiter_is_woken_when_the_claim_ends(backend, end):
    """A waiter entered while the claim runs is woken by its finish or release (Redis: a
    Pub/Sub message), not by polling."""
    owner = f"c:{secrets.token_hex(4)}"
    await backend.idempotency_claim(owner, "k", 10)
    async with backend.idempotency_waiter(owner, "k") as ended:
        assert not ended.is_set()
        if end == "finish":
            await backend.idempotency_finish(owner, "k", "{}", 60, 10)
        else:
            await backend.idempotency_release(owner, "k")
        await asyncio.wait_for(ended.wait(), 10)


@pytest.mark.parametrize("stream", ["all", "user:42", "group:lobby", "group:{odd}name"])
def test_a_scripts_keys_share_one_cluster_slot(stream):
    """Each script touches keys of one stream (or one owner's records) only, hash-tagged so
    that Redis Cluster keeps them in one slot (a script over several slots is refused)."""
    for keys in (history_keys("wscommands", stream), record_keys("wscommands", f"u:{stream}")):
        assert len({key_slot(key.encode()) for key in keys}) == 1, keys
