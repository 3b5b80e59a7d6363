"""Soak: connect/echo/disconnect cycles leave memory, Redis keys and connections at baseline.

``RELIABILITY_SOAK_CYCLES`` sets the number of cycles (CI: 1,000; the documented run in
docs/reliability.md: 10,000), after ``RELIABILITY_SOAK_WARM_UP`` cycles (1,000) that let
the allocator and the pools reach their working size. The same code runs both.
"""

from __future__ import annotations

import asyncio
import os

import pytest
from websockets.asyncio.client import connect

from tests.reliability.services import rss_mb, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

CYCLES = int(os.environ.get("RELIABILITY_SOAK_CYCLES", "1000"))
WORKERS = 10
WARM_UP = int(os.environ.get("RELIABILITY_SOAK_WARM_UP", "1000"))


async def cycles(url: str, count: int) -> None:
    """``count`` connect / echo / close cycles over ``WORKERS`` concurrent clients."""

    async def worker(n: int) -> None:
        for _ in range(n):
            async with connect(url) as ws:
                await ws.send('{"echo": {"text": "soak"}, "request_id": 1}')
                assert "soak" in await ws.recv()

    await asyncio.gather(*(worker(count // WORKERS) for _ in range(WORKERS)))


# The engine's own per-connection objects (gate, socket, frames held while opening) leak or
# not independently of the ASGI servers'.
@pytest.mark.parametrize("kind", ["daphne", "engine"], indirect=True)
async def test_connect_disconnect_cycles_return_to_baseline(own_redis, live, kind):
    server = live({"REDIS_URL": own_redis.url}, kind=kind)
    async with connect(server.ws) as ws:
        await ws.send('{"probe.pid": {}, "request_id": 1}')
        pid = int((await ws.recv()).split(":")[1].split(",")[0])
    await cycles(server.ws, WARM_UP)

    def idle_keys() -> int:
        count = int(own_redis.cli("dbsize"))
        if count:
            print("keys:", own_redis.cli("--scan").split()[:10])  # shown if it fails
        return count

    # Baseline: the process with no connections (its hub stops and leaves Redis).
    # The last disconnect stops the hub, which then clears its presence and figures: on a
    # loaded machine that can take a while (each Redis call is bounded by its timeout).
    wait_until(lambda: idle_keys() == 0, 30, what="no keys while idle")
    keys_before = 0
    clients_before = own_redis.clients()
    rss_before = rss_mb(pid)

    await cycles(server.ws, CYCLES)

    wait_until(lambda: idle_keys() == keys_before, 15, what="Redis keys back to baseline")
    clients_after = own_redis.clients()
    rss_after = rss_mb(pid)
    print(
        f"soak {CYCLES} cycles: rss {rss_before:.1f} -> {rss_after:.1f} MiB, "
        f"redis keys {keys_before} -> {idle_keys()}, "
        f"redis clients {clients_before} -> {clients_after}"
    )
    assert clients_after <= clients_before + WORKERS  # pooled connections, not one per client
    # Flat, whatever CYCLES is: a leak of 1 KB per connection would show at 10,000.
    assert rss_after - rss_before < 8
