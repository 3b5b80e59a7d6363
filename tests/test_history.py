"""Stream history and idempotency records in both backends (memory and real Redis)."""

from __future__ import annotations

import asyncio
import secrets

import pytest
import redis
from redis.crc import key_slot

from wscommands.backends.base import CLAIMED, DONE, PENDING, HistoryBounds
from wscommands.backends.memory import MemoryBackend
from wscommands.backends.redis import RedisBackend
from wscommands.backends.redis_idempotency import record_keys
from wscommands.backends.redis_scripts import history_keys
from wscommands.checks import check_limits
from wscommands.streams.cursor import history_bounds

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
    """Offsets 1, 2, 3 in one epoch; a stream never written reads as ("", 0) and reading
    it creates nothing (the first push makes its first epoch)."""
    s = stream()
    assert (await backend.history_positions([s], BOUNDS))[s] == ("", 0)
    assert (await backend.history_read(s, "", 0, BOUNDS)).epoch == ""
    assert (await backend.history_positions([s], BOUNDS))[s] == ("", 0)
    appended = [await backend.history_append(s, f'{{"n":{i}}}', BOUNDS) for i in range(3)]
    epoch = appended[0][0]
    assert epoch and appended == [(epoch, 1), (epoch, 2), (epoch, 3)]
    # "No push yet" (epoch "", offset 0) resumes from the first epoch's first push.
    first = await backend.history_read(s, "", 0, BOUNDS)
    assert first.complete and first.epoch == epoch and [o for o, _ in first.entries] == [1, 2, 3]


async def test_streams_are_bounded_idle_longest_first(backend):
    """Past max_streams, the stream idle the longest loses its history (a new epoch)."""
    bounds = HistoryBounds(size=3, ttl=60, meta_ttl=600, max_streams=3)
    names = [stream() for _ in range(3)]
    epochs = {s: (await backend.history_append(s, "{}", bounds))[0] for s in names}
    await backend.history_read(names[0], epochs[names[0]], 0, bounds)  # used again: kept
    await backend.history_append(stream(), "{}", bounds)  # a fourth: names[1] goes
    positions = await backend.history_positions(names, bounds)
    assert positions[names[0]] == (epochs[names[0]], 1)
    assert positions[names[1]] == ("", 0)
    assert positions[names[2]] == (epochs[names[2]], 1)


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


async def test_memory_streams_expire_on_both_ttls():
    """Pushes go after ttl, the stream itself (position and all) after meta_ttl idle."""
    backend = MemoryBackend()
    short = HistoryBounds(size=10, ttl=0.1, meta_ttl=0.2)
    s = stream()
    await backend.history_append(s, "{}", short)
    await asyncio.sleep(0.3)  # the only way to let an age bound pass
    await backend.history_append(stream(), "{}", short)  # any use sweeps what expired
    assert backend.stream_count() == 1
    assert (await backend.history_positions([s], short))[s] == ("", 0)


async def test_redis_metadata_does_not_outlive_the_history_by_a_day(redis_url):
    """With the default settings a stream's position expires within an hour of its last
    push (HISTORY_META_TTL 3600), not 24 h."""
    backend = RedisBackend({"address": redis_url}, prefix=f"t{secrets.token_hex(4)}")
    try:
        s = stream()
        await backend.history_append(s, "{}", history_bounds())
        meta = history_keys(backend.prefix, s)[1]
        ttl = redis.Redis.from_url(redis_url).pttl(meta)
        assert 0 < ttl <= 3600_000
    finally:
        await backend.close()


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
    # (The third history key, the index of streams, is shared: history needs one Redis.)
    for keys in (history_keys("wscommands", stream)[:2], record_keys("wscommands", f"u:{stream}")):
        assert len({key_slot(key.encode()) for key in keys}) == 1, keys


def test_a_replay_budget_below_one_history_is_caught_at_start_up(settings):
    """RESUME_PUSHES under HISTORY_SIZE would refuse a reconnect its one full history."""
    settings.WSCOMMANDS = {**settings.WSCOMMANDS, "HISTORY_SIZE": 500, "RESUME_PUSHES": 100}
    assert "wscommands.E030" in {message.id for message in check_limits()}
    settings.WSCOMMANDS = {**settings.WSCOMMANDS, "STREAM_REORDER_WAIT": 0}
    assert "wscommands.E005" in {message.id for message in check_limits()}
