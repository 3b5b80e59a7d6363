"""The worker pool's fair share (fairpool.FairPool) and the memory budget (budget.py), in-process.

The end-to-end versions (real daphne, real sockets) are in tests/reliability/test_abuse.py;
these pin down the rules themselves with threads blocked on events.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from wscommands._internal.fairpool import DaemonThreads, FairPool, Share, current_share
from wscommands._internal.threads import run_sync
from wscommands.checks import check_limits
from wscommands.guards.budget import Account, Budget
from wscommands.guards.weights import weigh
from wscommands.testing import CommandClient


class Gate:
    """Sync functions that block until opened; ``started`` counts the ones running."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.started: list[str] = []
        self.lock = threading.Lock()

    def hold(self, name: str) -> str:
        with self.lock:
            self.started.append(name)
        self.open.wait(10)
        return name


async def until(condition, timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def in_share(share: Share, func, *args):
    current_share.set(share)
    return await run_sync(func, *args)


@pytest.fixture
def pool(settings):
    def make(size: int, per: int, anonymous: float) -> None:
        settings.WSCOMMANDS = {
            **settings.WSCOMMANDS,
            "WORKER_THREADS": size,
            "WORKER_THREADS_PER_CONNECTION": per,
            "ANONYMOUS_WORKER_SHARE": anonymous,
        }

    return make


async def test_anonymous_connections_leave_threads_for_users(pool):
    """Anonymous calls hold at most their share; a logged-in call runs at once beside them."""
    pool(4, 4, 0.5)
    gate = Gate()
    anonymous = [Share(lambda: None) for _ in range(4)]
    tasks = [
        asyncio.ensure_future(in_share(s, gate.hold, f"a{i}")) for i, s in enumerate(anonymous)
    ]
    await until(lambda: len(gate.started) == 2)
    user = asyncio.ensure_future(in_share(Share(lambda: 1), gate.hold, "user"))
    await until(lambda: "user" in gate.started)
    assert len(gate.started) == 3  # two anonymous wait for their share
    gate.open.set()
    assert await user == "user"
    assert sorted(await asyncio.gather(*tasks)) == ["a0", "a1", "a2", "a3"]


async def test_one_connection_holds_at_most_its_share(pool):
    """A connection with many calls holds WORKER_THREADS_PER_CONNECTION threads; a freed
    thread goes to the connection running the fewest calls, not to the oldest waiter."""
    pool(3, 2, 1.0)
    gate = Gate()
    greedy = Share(lambda: 1)
    calls = [asyncio.ensure_future(in_share(greedy, gate.hold, f"g{i}")) for i in range(5)]
    await until(lambda: len(gate.started) == 2)
    other = asyncio.ensure_future(in_share(Share(lambda: 2), gate.hold, "other"))
    await until(lambda: "other" in gate.started)
    assert gate.started[:2] == ["g0", "g1"] and len(gate.started) == 3
    gate.open.set()
    await asyncio.gather(*calls, other)


async def test_a_cancelled_waiter_gives_its_turn_back(pool):
    """A call cancelled while waiting for a thread never runs and leaves no slot taken."""
    pool(1, 1, 1.0)
    gate = Gate()
    first = asyncio.ensure_future(in_share(Share(lambda: 1), gate.hold, "first"))
    await until(lambda: gate.started == ["first"])
    waiting = asyncio.ensure_future(in_share(Share(lambda: 2), gate.hold, "cancelled"))
    await asyncio.sleep(0.05)
    waiting.cancel()
    gate.open.set()
    assert await first == "first"
    assert await in_share(Share(lambda: 3), gate.hold, "after") == "after"
    assert "cancelled" not in gate.started
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_one_user_holds_at_most_its_share_over_all_its_connections(pool, settings):
    """A user's connections together hold WORKER_THREADS_PER_USER threads (each connection
    only one here); another user's call runs at once beside them."""
    pool(8, 4, 0.5)
    settings.WSCOMMANDS = {**settings.WSCOMMANDS, "WORKER_THREADS_PER_USER": 3}
    gate = Gate()
    sockets = [Share(lambda: 7) for _ in range(6)]  # one account, six connections
    calls = [
        asyncio.ensure_future(in_share(s, gate.hold, f"u7-{i}")) for i, s in enumerate(sockets)
    ]
    await until(lambda: len(gate.started) == 3)
    other = asyncio.ensure_future(in_share(Share(lambda: 8), gate.hold, "u8"))
    await until(lambda: "u8" in gate.started)
    assert len(gate.started) == 4  # three of user 7's calls wait for its share
    gate.open.set()
    await asyncio.gather(*calls, other)


def test_pool_counts_anonymous_share_at_least_one_thread():
    pool = FairPool(2, 8, 0.1)
    assert pool.anonymous_limit == 1 and pool.per_share == 2
    pool.executor.shutdown()


def test_the_worker_threads_refuse_a_call_once_shut_down_rather_than_never_run_it():
    """(Their threads end at shutdown: a call queued after it would wait forever.)
    tests/reliability/test_shutdown.py shows that they never hold up a process's exit."""
    threads = DaemonThreads(2, "test")
    assert threads.submit(lambda: 7).result(timeout=5) == 7
    threads.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        threads.submit(lambda: 8)


async def test_budget_cuts_the_heaviest_and_refuses_the_heaviest_asker(settings):
    settings.WSCOMMANDS = {**settings.WSCOMMANDS, "MAX_CLIENT_MEMORY": 1000}
    budget = Budget()
    cut: list[str] = []
    heavy = Account(lambda: cut.append("heavy"), budget)
    light = Account(lambda: cut.append("light"), budget)
    assert heavy.reserve_request(700) is None
    assert light.reserve_request(200) is None
    # light asks for more than is left while heavy holds more: heavy is cut.
    assert light.reserve_request(200) is None
    await until(lambda: cut == ["heavy"])
    assert budget.total == 400
    # Now light is the heaviest: its own request over the budget is refused.
    refusal = light.reserve_request(700)
    assert refusal is not None and refusal.details == {"limit": "MAX_CLIENT_MEMORY", "max": 1000}
    light.release_request(200)
    light.release_request(200)
    assert budget.total == 0
    light.close()
    assert budget.accounts == set()


def test_weigh_counts_arguments_and_closures():
    text = "x" * 10_000

    def closure() -> str:
        return text

    assert weigh(text) >= 10_000
    assert weigh(closure) >= 10_000
    assert weigh({"a": [text, text]}) >= 10_000  # the same object once
    assert weigh({"a": [text, text]}) < 20_000
    assert weigh(object()) < 100
    assert weigh(["y" * 1000] * 1000, stop=5000) < 10_000  # stops early


def test_misconfigured_shares_and_byte_burst_are_caught_at_start_up(settings):
    settings.WSCOMMANDS = {
        **settings.WSCOMMANDS,
        "ANONYMOUS_WORKER_SHARE": 1.5,
        "RATE_LIMIT_BYTES_BURST": 1000,
    }
    ids = {message.id for message in check_limits()}
    assert {"wscommands.E009", "wscommands.E010"} <= ids


async def test_a_client_with_many_frames_waiting_lets_others_run():
    """A consumer with many frames queued yields the event loop between two of them
    (CommandConsumer.__call__), so another client is answered while most of a flood still
    waits."""
    async with CommandClient() as flooder, CommandClient() as bystander:
        # A first request of its own: the periodic sweep of stale database connections
        # (a trip to a thread, which yields) is done before the flood.
        await flooder.request({"echo": {"text": "first"}})
        frame = '{"echo": {"text": "flood"}}'
        for _ in range(800):  # queued at once: put() does not yield
            await flooder.communicator.send_to(text_data=frame)
        reply = await bystander.request({"echo": {"text": "me"}})
        assert reply["echo"] == {"text": "me"}
        waiting = flooder.communicator.input_queue.qsize()
        assert waiting > 400, f"only {waiting} of the flood's 800 frames were left"
