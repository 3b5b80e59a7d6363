"""The pending-request budget's common case (Account.reserve_request/release_request, a fast
path of its own) refuses at exactly the documented limits and gives back every byte, after
refused, finished and abandoned requests."""

from __future__ import annotations

import asyncio
import json

from tests.test_ordering import _commands, barrier, release  # noqa: F401 (fixture)
from wscommands.guards.budget import get_budget
from wscommands.server.requestqueue import RequestQueue
from wscommands.testing import CommandClient

#: Connections that fill their pending requests, then finish them or go away mid-request.
CYCLES = 6


def frame_bytes(obj) -> int:
    return len(json.dumps(obj, separators=(",", ":")).encode())


async def until(condition) -> None:
    """Until ``condition()`` holds (finished requests release their bytes as their tasks end)."""
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.01)


async def test_count_and_bytes_limits_are_exact_and_nothing_leaks(settings, monkeypatch):
    monkeypatch.setattr(RequestQueue.stop, "__defaults__", (0.2,))
    settings.WSCOMMANDS = {
        **settings.WSCOMMANDS,
        "MAX_PENDING_REQUESTS": 4,
        "MAX_PENDING_BYTES": 4000,
        "MAX_CLIENT_MEMORY": 10**9,
        "RATE_LIMIT": None,
        "RATE_LIMIT_BYTES": None,
        "RATE_LIMIT_CLOSE_AFTER": 10**6,
    }
    budget = get_budget()
    for cycle in range(CYCLES):
        async with CommandClient() as client:
            block = {"t.block": {"key": f"b{cycle}"}, "request_id": 1}
            await client.send(block)
            for n in range(2, 5):
                await client.send({"t.mark": {"key": "m"}, "request_id": n})
            await client.send({"t.mark": {"key": "over"}, "request_id": 5})
            refused = await client.receive()
            assert refused["request_id"] == 5
            error = refused["errors"]["request"]
            assert error["code"] == "rate_limited"
            assert error["details"] == {"limit": "MAX_PENDING_REQUESTS", "max": 4}
            # account must hold exactly the 4 frames
            accounts = list(budget.accounts)
            assert len(accounts) == 1
            held = accounts[0].requests
            assert held.count == 4
            if cycle % 3 == 0:
                release(f"b{cycle}")
                for _ in range(4):
                    await client.receive()
                await until(lambda held=held: held.count == 0)
                assert held.bytes == 0
                assert budget.total == accounts[0].held
            # otherwise: disconnect mid-request (the blocked one and 3 waiting)
        await until(lambda: budget.total == 0)
        assert not budget.accounts
    # Let the blocked requests finish after their connections closed.
    for cycle in range(CYCLES):
        release(f"b{cycle}")
    await until(lambda: budget.total == 0)
    assert not budget.accounts


async def test_bytes_limit_is_exact(settings):
    limit = 2000
    settings.WSCOMMANDS = {
        **settings.WSCOMMANDS,
        "MAX_PENDING_REQUESTS": 1000,
        "MAX_PENDING_BYTES": limit,
        "MAX_CLIENT_MEMORY": 10**9,
        "RATE_LIMIT": None,
        "RATE_LIMIT_BYTES": None,
    }
    budget = get_budget()
    async with CommandClient() as client:
        await client.send({"t.block": {"key": "x"}, "request_id": 1})
        await barrier(client)
        account = next(iter(budget.accounts))
        used = account.requests.bytes
        # a frame of exactly the remaining bytes is accepted (held.bytes + size <= limit)
        text_len = limit - used - frame_bytes({"t.mark": {"key": ""}, "request_id": 2})
        await client.send(
            json.dumps({"t.mark": {"key": "k" * text_len}, "request_id": 2}, separators=(",", ":"))
        )
        await barrier(client)
        assert account.requests.bytes == limit, account.requests.bytes
        await client.send({"t.mark": {"key": ""}, "request_id": 3})
        refused = await client.receive()
        assert refused["request_id"] == 3
        assert refused["errors"]["request"]["details"] == {
            "limit": "MAX_PENDING_BYTES",
            "max": limit,
        }
        release("x")
        assert {(await client.receive())["request_id"] for _ in range(2)} == {1, 2}
        await until(lambda: account.requests.count == 0)
        assert account.requests.bytes == 0
    await until(lambda: budget.total == 0)


async def test_client_memory_refusal(settings):
    settings.WSCOMMANDS = {
        **settings.WSCOMMANDS,
        "MAX_PENDING_REQUESTS": 1000,
        "MAX_PENDING_BYTES": 10**9,
        "MAX_CLIENT_MEMORY": 3000,
        "RATE_LIMIT": None,
        "RATE_LIMIT_BYTES": None,
        "RATE_LIMIT_CLOSE_AFTER": 10**6,
    }
    budget = get_budget()
    async with CommandClient() as client:
        await client.send({"t.block": {"key": "y"}, "request_id": 1})
        for n in range(2, 200):
            await client.send({"t.mark": {"key": "z" * 100}, "request_id": n})
        refusals = []
        while True:
            frame = await client.receive()
            refusals.append(frame)
            if len(refusals) > 5:
                break
        for frame in refusals:
            assert frame["errors"]["request"]["details"] == {
                "limit": "MAX_CLIENT_MEMORY",
                "max": 3000,
            }
        assert budget.total <= 3000
        release("y")
    await until(lambda: budget.total == 0)
