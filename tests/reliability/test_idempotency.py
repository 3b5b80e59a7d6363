"""Idempotent requests under attack, on real daphne and engine processes and a Redis of the
test's own.

A running claim is never evicted, anonymous records belong to one client (its ``client``
token), a frame with ``authenticate`` is never recorded, and waiting retries are woken (not
polled), bounded in number and in time (docs/protocol.md, "Idempotent requests").
"""

from __future__ import annotations

import asyncio
import secrets

import pytest

from tests.scaleout.client import WSClient
from tests.scaleout.conftest import http_login

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("kind", ["daphne", "engine"], indirect=True)]


async def until_running(redis, key: str) -> None:
    """Wait until the first run holds its claim (its record says "P"), whoever owns it."""
    while True:
        for records in redis.cli("keys", "wscommands:{i:*}:r").split():
            if redis.cli("hget", records, key) == "P":
                return
        await asyncio.sleep(0.02)


def script_calls(redis) -> int:
    """EVALSHA/EVAL calls Redis has served (INFO commandstats)."""
    total = 0
    for line in redis.cli("info", "commandstats").splitlines():
        if line.startswith(("cmdstat_evalsha:", "cmdstat_eval:")):
            total += int(line.split("calls=")[1].split(",")[0])
    return total


def slow_increment(key: str, seconds: float = 3.0) -> dict:
    return {"sleep": {"seconds": seconds}, "counter.increment": {}, "idempotency_key": key}


async def test_a_running_claim_survives_a_flood_of_fresh_keys(live, own_redis, kind):
    """The victim's slow request runs; 101 fresh-key echoes from a socket of the same client
    and 101 from another anonymous one; the victim's retry waits and gets the same reply: the
    counter moved once (it moved twice when the cap evicted the running claim)."""
    server = live(env={"REDIS_URL": own_redis.url}, kind=kind)
    token, key = secrets.token_hex(16), secrets.token_hex(16)
    victim = await WSClient.open(f"{server.ws}?client={token}")
    first = asyncio.create_task(victim.request(slow_increment(key), timeout=60))
    await asyncio.wait_for(until_running(own_redis, key), 30)
    same_client = await WSClient.open(f"{server.ws}?client={token}")
    stranger = await WSClient.open(server.ws)
    for flooder in (same_client, stranger):
        for _ in range(101):
            echo = {"echo": {"text": "x"}, "idempotency_key": secrets.token_hex(16)}
            assert (await flooder.request(echo))["echo"] == {"text": "x"}
    retry = await WSClient.open(f"{server.ws}?client={token}")
    again = await retry.request(slow_increment(key), timeout=60)
    original = await first
    assert again["counter.increment"] == original["counter.increment"] == 1
    assert await retry.call("counter.get") == 1
    for client in (victim, same_client, stranger, retry):
        await client.close()


async def test_authenticate_is_never_recorded_nor_shared(live, reliability_db, kind):
    """Two anonymous clients (no session, no token) send one key: the second never receives
    the first one's authenticate success and whoami."""
    server = live(kind=kind)
    session = http_login(live() if kind == "engine" else server, "rel")  # the engine: no HTTP
    key = secrets.token_hex(16)
    first = await WSClient.open(server.ws)
    frame = {"authenticate": {"session_id": session}, "whoami": {}, "idempotency_key": key}
    signed_in = await first.request(frame)
    assert signed_in["authenticate"]["authenticate"] == "success"
    assert signed_in["whoami"]["username"] == "rel"
    other = await WSClient.open(server.ws)
    stolen = {"authenticate": {"session_id": "not-a-session"}, "whoami": {}, "idempotency_key": key}
    reply = await other.request(stolen)
    assert reply["authenticate"]["authenticate"] == "failure"
    assert "rel" not in str(reply)
    await first.close()
    await other.close()


async def test_waiting_retries_are_woken_bounded_and_given_a_deadline(live, own_redis, kind):
    """A running request and 12 retries of it on each of two processes: 8 per process wait
    (IDEMPOTENCY_MAX_WAITERS) and are woken with the recorded reply, on the other process too;
    the rest are refused with rate_limited at once. Waiting costs a few script calls per retry,
    not one every 50 ms. On a process with IDEMPOTENCY_WAIT = 0.5 a retry gets unavailable.
    A and the hasty process are of the test's kind, B a daphne (a mixed cluster for the
    engine)."""
    a = live(env={"REDIS_URL": own_redis.url}, kind=kind)
    b = live(env={"REDIS_URL": own_redis.url})
    hasty = live(env={"REDIS_URL": own_redis.url}, kind=kind, IDEMPOTENCY_WAIT=0.5)
    token, key = secrets.token_hex(16), secrets.token_hex(16)
    url = f"?client={token}"
    victim = await WSClient.open(a.ws + url)
    retries = [await WSClient.open(s.ws + url) for s in (a, b) for _ in range(12)]
    impatient = await WSClient.open(hasty.ws + url)
    first = asyncio.create_task(victim.request(slow_increment(key, 4.0), timeout=60))
    await asyncio.wait_for(until_running(own_redis, key), 30)
    calls = script_calls(own_redis)
    late, *replies = await asyncio.gather(
        impatient.request(slow_increment(key, 4.0), timeout=60),
        *(c.request(slow_increment(key, 4.0), timeout=60) for c in retries),
    )
    original = await first
    waited_calls = script_calls(own_redis) - calls
    refused = [r for r in replies if "errors" in r]
    answered = [r for r in replies if "errors" not in r]
    assert len(answered) == 16 and len(refused) == 8
    assert all(r["counter.increment"] == original["counter.increment"] == 1 for r in answered)
    for r in refused:
        error = r["errors"]["request"]
        assert error["code"] == "rate_limited"
        assert error["details"] == {"limit": "IDEMPOTENCY_MAX_WAITERS", "max": 8}
    assert late["errors"]["request"]["code"] == "unavailable"
    print(f"16 retries waiting 4 s: {waited_calls} Redis script calls (polling: ~1,300)")
    # Polling every 50 ms for the 4 s run: 16 waiters x 80 calls at least. Woken: a few calls
    # each (the rest are the three processes' presence heartbeats, 2 calls a second each).
    assert waited_calls < 400, waited_calls
    assert await victim.call("counter.get") == 1
    for client in (victim, impatient, *retries):
        await client.close()
