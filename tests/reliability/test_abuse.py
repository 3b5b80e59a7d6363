"""Resource exhaustion by one anonymous client (issue 10), against real daphne and engine
processes (the engine keeps every bound of the ASGI path).

One test per attack: each shows the bound refusing the attacker with a documented error (or
close code) while a well-behaved client keeps being served. What each attack costs in memory
and latency is measured by ``python -m bench.attacks`` (docs/reliability.md), not here.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.scaleout.client import WSClient
from tests.scaleout.conftest import http_login

pytestmark = pytest.mark.e2e
#: Each attack on daphne and on the engine, which must keep every bound of the ASGI path.
on_daphne_and_engine = pytest.mark.parametrize("kind", ["daphne", "engine"], indirect=True)


def refusal(reply: dict) -> dict:
    """The ``errors.request`` entry of a reply, or the one error entry of its command."""
    errors = reply.get("errors", {})
    return errors.get("request") or next(iter(errors.values()), {})


@on_daphne_and_engine
async def test_remind_timers_are_bounded_by_count_and_bytes(live, kind):
    """``remind`` of 200 KiB is refused by the example; timers past MAX_TIMERS or
    MAX_TIMER_BYTES get rate_limited naming the limit; refusals in a row close 4429."""
    server = live(kind=kind, MAX_TIMER_BYTES=20_000, RATE_LIMIT_CLOSE_AFTER=5)
    bystander = await WSClient.open(server.ws)
    heavy = await WSClient.open(server.ws)
    big = await heavy.request({"remind": {"seconds": 3600, "text": "x" * 200 * 1024}})
    assert big["errors"]["remind"]["code"] == "client_error"
    accepted = 0
    while accepted < 40:
        reply = await heavy.request({"remind": {"seconds": 3600, "text": "x" * 1000}})
        if "errors" in reply:
            break
        accepted += 1
    assert 0 < accepted < 20, f"{accepted} timers of 1 kB accepted"
    assert refusal(reply) == {
        "code": "rate_limited",
        "message": "timers hold too many bytes (MAX_TIMER_BYTES = 20000)",
        "details": {"limit": "MAX_TIMER_BYTES", "max": 20000},
    }

    many = await WSClient.open(server.ws)
    for _ in range(16):  # MAX_TIMERS, the default
        assert "errors" not in await many.request({"remind": {"seconds": 3600, "text": "hi"}})
    over = await many.request({"remind": {"seconds": 3600, "text": "hi"}})
    assert refusal(over) == {
        "code": "rate_limited",
        "message": "too many timers on this connection (MAX_TIMERS = 16)",
        "details": {"limit": "MAX_TIMERS", "max": 16},
    }
    for _ in range(5):  # RATE_LIMIT_CLOSE_AFTER more refusals in a row: closed
        await many.ws.send(json.dumps({"remind": {"seconds": 3600, "text": "hi"}}))
    assert await many.wait_closed() == 4429
    # A short reminder of the well-behaved client still arrives.
    await bystander.request({"remind": {"seconds": 0, "text": "tea"}})
    assert await bystander.push("reminder") == {"text": "tea"}
    for client in (bystander, heavy):
        await client.close()


@on_daphne_and_engine
async def test_requests_queued_behind_a_slow_one_are_weighed(live, kind):
    """With the example's 1024 waiting requests, 40 of 200 KB behind a slow one: past
    MAX_PENDING_BYTES (1 MiB) they are refused with rate_limited, request_id kept."""
    server = live(kind=kind, RATE_LIMIT=None, RATE_LIMIT_BYTES=None)
    client = await WSClient.open(server.ws)
    bystander = await WSClient.open(server.ws)
    await client.ws.send(json.dumps({"sleep": {"seconds": 2}, "request_id": "slow"}))
    padding = "p" * 200_000
    futures = [
        asyncio.ensure_future(client.request({"echo": {"text": padding}}, timeout=60))
        for _ in range(40)
    ]
    assert await bystander.call("echo", text="hi") == {"text": "hi"}
    replies = await asyncio.gather(*futures)
    refused = [refusal(r) for r in replies if "errors" in r]
    served = [r for r in replies if "echo" in r]
    assert refused and served
    assert {r["details"]["limit"] for r in refused} == {"MAX_PENDING_BYTES"}
    assert all(r["code"] == "rate_limited" for r in refused)
    assert len(served) * 200_000 <= 1024 * 1024
    for c in (client, bystander):
        await c.close()


@on_daphne_and_engine
async def test_process_budget_cuts_the_heaviest_connection(live, kind):
    """Two clients each under their own cap but together over MAX_CLIENT_MEMORY: the
    heavier is cut off (4429); the lighter and a well-behaved client go on."""
    server = live(
        kind=kind,
        RATE_LIMIT=None,
        RATE_LIMIT_BYTES=None,
        MAX_PENDING_BYTES=2_500_000,
        MAX_CLIENT_MEMORY=3_000_000,
    )
    heavy = await WSClient.open(server.ws)
    lighter = await WSClient.open(server.ws)
    bystander = await WSClient.open(server.ws)
    padding = "p" * 200_000
    for client in (heavy, lighter):
        await client.ws.send(json.dumps({"sleep": {"seconds": 3}}))
    # heavy holds 2 MB behind its sleep; lighter then asks for more than what is left.
    for _ in range(10):
        await heavy.ws.send(json.dumps({"echo": {"text": padding}}))
    # Refused at once, after the 10 frames before it were queued.
    assert "errors" in await heavy.request({"errors": {}})
    assert await bystander.call("echo", text="before") == {"text": "before"}
    lighter_replies = [
        asyncio.ensure_future(lighter.request({"echo": {"text": padding}}, timeout=60))
        for _ in range(6)
    ]
    assert await heavy.wait_closed() == 4429
    replies = await asyncio.gather(*lighter_replies)
    assert all(r.get("echo") == {"text": padding} for r in replies)
    assert await bystander.call("echo", text="after") == {"text": "after"}
    assert "cutting off the heaviest connection" in server.log()
    for client in (lighter, bystander):
        await client.close()


async def _start_sleepers(url: str, count: int = 16) -> list[WSClient]:
    """``count`` anonymous sockets of 127.0.0.1, each running the sync ``sleep(5)``."""
    sleepers = [await WSClient.open(url) for _ in range(count)]
    for sleeper in sleepers:
        await sleeper.ws.send(json.dumps({"sleep": {"seconds": 5}, "request_id": "zz"}))
        # Answered at once, after the sleep was scheduled: every sleep is in the pool's
        # hands (running or waiting for a thread) before the next request is sent.
        bad = await sleeper.request({"errors": {}})
        assert bad["errors"]["request"]["code"] == "invalid_request"
    return sleepers


# On daphne only: the engine's pool shares are the same code, shown by the next test (a login
# for the engine would start a daphne as well, and the sleepers hold the process 5 s).
async def test_sync_sleepers_do_not_starve_a_logged_in_user(live):
    """16 anonymous sockets each hold a worker thread with the sync ``sleep``; a logged-in
    user's sync ``div`` is answered before any of them finishes (anonymous share)."""
    # The stop need not wait for the sleeps' threads (nothing is checked after it).
    server = live(SHUTDOWN_TIMEOUT=1)
    key = http_login(server, "rel")
    user = await WSClient.open(server.ws, session_key=key)
    sleepers = await _start_sleepers(server.ws)
    assert await user.call("div", a=1, b=4) == 0.25
    assert not any(s.pushes for s in sleepers), "a sleep finished before div was answered"
    for client in [user, *sleepers]:
        await client.close()


@on_daphne_and_engine
async def test_one_hosts_sleepers_do_not_starve_another_anonymous_host(live, kind):
    """The anonymous sockets of one IP hold at most ANONYMOUS_WORKER_THREADS_PER_IP (4)
    threads: an anonymous client of another IP gets its sync ``div`` before any sleep ends
    (without the cap, 16 sleepers fill the whole anonymous half of the pool)."""
    server = live(kind=kind, SHUTDOWN_TIMEOUT=1)
    sleepers = await _start_sleepers(server.ws)
    other_host = await WSClient.open(server.ws, local_addr=("127.0.0.2", 0))
    assert await other_host.call("div", a=1, b=4) == 0.25
    assert not any(s.pushes for s in sleepers), "a sleep finished before div was answered"
    for client in [other_host, *sleepers]:
        await client.close()


@on_daphne_and_engine
async def test_one_frame_of_10000_commands_is_refused(live, kind):
    """A frame of 10,000 commands (119 KB) is refused as a whole: invalid_request naming
    MAX_COMMANDS_PER_REQUEST, with the request_id, and nothing runs."""
    server = live(kind=kind)
    client = await WSClient.open(server.ws)
    commands = {f"c{i}": {} for i in range(10_000)}
    reply = await client.request(commands)
    assert refusal(reply) == {
        "code": "invalid_request",
        "message": "more than 32 commands in one request",
        "details": {"limit": "MAX_COMMANDS_PER_REQUEST", "max": 32},
    }
    assert "c0" not in reply.get("errors", {})
    at_limit = await client.request({f"echo{i}": {} for i in range(31)} | {"echo": {"text": "x"}})
    assert at_limit["echo"] == {"text": "x"}
    await client.close()


@on_daphne_and_engine
async def test_2500_joins_are_capped(live, kind):
    """Joins past MAX_GROUPS_PER_CONNECTION (100) get rate_limited; refusals in a row then
    close 4429; other connections still join."""
    server = live(kind=kind, RATE_LIMIT_CLOSE_AFTER=10)
    client = await WSClient.open(server.ws)
    other = await WSClient.open(server.ws)
    refused = []
    for i in range(2500):
        try:
            reply = await client.request({"probe.join": {"group": f"g{i}"}}, timeout=10)
        except (ConnectionClosed, ConnectionError):
            break
        if "errors" in reply:
            refused.append((i, refusal(reply)))
    assert refused, "2500 groups joined"
    first, entry = refused[0]
    assert first == 100
    assert entry["code"] == "rate_limited"
    assert entry["details"] == {"limit": "MAX_GROUPS_PER_CONNECTION", "max": 100}
    assert await client.wait_closed() == 4429
    assert "errors" not in await other.request({"probe.join": {"group": "g1"}})
    await other.close()


@on_daphne_and_engine
async def test_256_kb_frames_of_digits_and_brackets(live, kind):
    """A 256 KB integer and a 125,000-deep nesting are refused as invalid_request naming the
    limit (parsed by orjson first, checked on the result); echo answers after each. Sent
    back to back, such frames are refused by the byte rate (RATE_LIMIT_BYTES) once past
    its burst, so one client cannot spend the event loop on parsing."""
    server = live(kind=kind)
    client = await WSClient.open(server.ws)
    digits = '{"echo": {"text": ' + "7" * 250_000 + '}, "request_id": 1}'
    await client.ws.send(digits)
    reply = await client.next_push()
    assert reply["errors"]["request"]["code"] == "invalid_request"
    assert reply["errors"]["request"]["details"] == {"limit": "MAX_INTEGER_DIGITS", "max": 4300}
    assert await client.call("echo", text="after digits") == {"text": "after digits"}
    brackets = '{"echo": {"text": ' + "[" * 125_000 + "]" * 125_000 + "}}"
    await client.ws.send(brackets)
    reply = await client.next_push()
    assert reply["errors"]["request"]["details"] == {"limit": "MAX_JSON_DEPTH", "max": 32}
    assert await client.call("echo", text="after brackets") == {"text": "after brackets"}
    for _ in range(20):  # 5 MB, over the 4 MiB burst
        await client.ws.send(digits)
    replies = [await client.next_push() for _ in range(20)]
    throttled = [r["errors"]["request"] for r in replies if "retry_after" in str(r)]
    assert throttled, "20 frames of 250 KB at once were all parsed"
    assert throttled[0]["code"] == "rate_limited"
    assert throttled[0]["details"]["limit"] == "RATE_LIMIT_BYTES"
    await client.close()


@on_daphne_and_engine
async def test_a_2_mib_frame_gets_a_close_frame(live, kind):
    """A frame over the server's 1 MiB cap (daphne's, the engine's --max-frame-size): the
    client gets a close frame (1009), not a dropped TCP connection (1006), so it can tell the
    frame was too big."""
    server = live(kind=kind)
    async with connect(server.ws, max_size=None) as ws:
        await ws.send(json.dumps({"echo": {"text": "x"}, "request_id": 1}))
        assert json.loads(await ws.recv())["echo"] == {"text": "x"}
        await ws.send(json.dumps({"echo": {"text": "x" * 2 * 1024 * 1024}}))
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(30):
                await ws.recv()
    assert ws.protocol.close_rcvd is not None, "no close frame: the TCP connection was dropped"
    assert ws.protocol.close_rcvd.code == 1009
