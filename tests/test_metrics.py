"""Prometheus metrics of two real daphne processes, scraped over HTTP and parsed.

Each process serves its own ``/metrics`` (one scrape target per process, see
docs/operations.md); the sums over both are what a Prometheus ``sum()`` would show.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from tests.live import Server

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

TOKEN = secrets.token_urlsafe(24)
Samples = dict[tuple[str, frozenset], float]


@pytest.fixture(scope="module")
def pair(sqlite_env, redis_url) -> Iterator[tuple[Server, Server]]:
    """Two daphne processes on Redis, with a metrics token and a low nesting limit."""
    limits = {"PREFIX": f"metrics-{secrets.token_hex(3)}", "MAX_JSON_DEPTH": 8}
    env = {
        **sqlite_env,
        "DJANGO_SETTINGS_MODULE": "tests.reliability.settings",  # + the probe.* commands
        "REDIS_URL": redis_url,
        "WSCOMMANDS_METRICS_TOKEN": TOKEN,
        "WSCOMMANDS_PRESENCE_EVENTS": "0",
        "WSCOMMANDS_LIMITS": json.dumps(limits),
    }
    servers = [Server(env).start(), Server(env).start()]
    yield servers[0], servers[1]
    for server in servers:
        server.stop()


def fetch(server: Server, token: str | None = TOKEN) -> tuple[int, str]:
    request = urllib.request.Request(f"{server.http}/metrics")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def scrape(server: Server) -> Samples:
    """Every sample of the process's wscommands metrics, keyed by name and labels."""
    status, text = fetch(server)
    assert status == 200, text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("wscommands_")
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def eventually(check, what: str, timeout: float = 10) -> None:
    """Scrape until ``check()`` holds (the server records some things just after replying)."""
    async with asyncio.timeout(timeout):
        while not await asyncio.to_thread(check):
            await asyncio.sleep(0.05)


def test_metrics_are_not_public(pair):
    """Without the token (or a staff session) /metrics answers 403; with it, the metrics."""
    server = pair[0]
    assert fetch(server, token=None)[0] == 403
    assert fetch(server, token="wrong-" + TOKEN)[0] == 403
    status, text = fetch(server)
    assert status == 200
    assert "wscommands_connections" in text


async def test_commands_errors_refusals_and_broadcasts_are_counted(pair):
    """Real traffic on both processes moves exactly the metrics it should."""
    one, two = pair
    async with connect(one.ws) as a, connect(two.ws) as b:
        # Both connected: each process's gauge counts its own client.
        await a.send(json.dumps({"echo": {"text": "hi"}, "request_id": 0}))
        await a.recv()
        await b.send(json.dumps({"echo": {"text": "hi"}, "request_id": 0}))
        await b.recv()
        before = [await asyncio.to_thread(scrape, s) for s in pair]
        assert value(before[0], "wscommands_connections") >= 1
        assert value(before[1], "wscommands_connections") >= 1

        frames = [
            {"echo": {"text": "x"}, "request_id": 1},
            {"echo": {"text": "y"}, "square": 3, "request_id": 2},
            {"div": {"a": 1, "b": 0}, "request_id": 3},  # client_error
            {"no_such_command": {}, "request_id": 4},  # unknown_command
            {"echo": {"wrong": 1}, "request_id": 5},  # invalid_arguments
        ]
        for frame in frames:
            await a.send(json.dumps(frame))
            await a.recv()
        await a.send("not json")
        await a.recv()
        await a.send('{"echo": ' + "[" * 20 + "]" * 20 + "}")  # deeper than 8
        await a.recv()
        hello = {"probe.broadcast": {"message": {"hello": "all"}}, "request_id": 6}
        await a.send(json.dumps(hello))
        got_a = [json.loads(await a.recv()) for _ in range(2)]
        got_b = json.loads(await b.recv())
        assert any("request_id" in m for m in got_a)
        assert "request_id" not in got_b  # b received the broadcast as a push

        after = [await asyncio.to_thread(scrape, s) for s in pair]

    d = lambda name, **labels: delta(after[0], before[0], name, **labels)  # noqa: E731
    duration = "wscommands_command_duration_seconds_count"
    assert d(duration, command="echo", outcome="ok") == 2
    assert d(duration, command="square", outcome="ok") == 1
    assert d(duration, command="div", outcome="error") == 1
    assert d(duration, command="echo", outcome="error") == 1
    assert d(duration, command="probe.broadcast", outcome="ok") == 1
    errors = "wscommands_command_errors_total"
    assert d(errors, command="div", code="client_error") == 1
    assert d(errors, command="unknown", code="unknown_command") == 1
    assert d(errors, command="echo", code="invalid_arguments") == 1
    assert d(errors, command="no_such_command", code="unknown_command") == 0  # never a label
    refused = "wscommands_frames_refused_total"
    assert d(refused, reason="invalid_json") == 1
    assert d(refused, reason="too_deep") == 1
    # 8 frames from a; replies to all 8 plus the broadcast to a itself.
    assert d("wscommands_frames_received_total") == 8
    assert d("wscommands_frames_sent_total") == 9
    assert d("wscommands_received_bytes_total") > 8 * 10
    assert d("wscommands_sent_bytes_total") > 9 * 10
    # div is a sync command: it waited for a worker thread.
    assert d("wscommands_worker_wait_seconds_count") >= 1
    assert value(after[0], "wscommands_worker_queue_length") == 0

    # The broadcast crossed the layer once per process and reached one local client on each.
    for i in (0, 1):
        fanned = delta(after[i], before[i], "wscommands_fanout_recipients_count", target="all")
        recipients = delta(after[i], before[i], "wscommands_fanout_recipients_sum", target="all")
        lag = delta(after[i], before[i], "wscommands_delivery_lag_seconds_count", target="all")
        assert (fanned, lag) == (1, 1)
        assert recipients >= 1
    total_sent = sum(delta(after[i], before[i], "wscommands_frames_sent_total") for i in (0, 1))
    assert total_sent == 10  # 9 on one, the broadcast to b on two: summed as Prometheus would


async def test_connections_and_close_codes(pair):
    """Opening raises the gauge and the opened counter; closing counts under its code."""
    server = pair[1]
    before = await asyncio.to_thread(scrape, server)
    async with connect(server.ws) as ws:
        await ws.send(json.dumps({"echo": {"text": "x"}, "request_id": 1}))
        await ws.recv()
        during = await asyncio.to_thread(scrape, server)
        assert delta(during, before, "wscommands_connections") == 1
        assert delta(during, before, "wscommands_connections_opened_total") == 1
        await ws.close(code=1000)
    closed = "wscommands_connections_closed_total"

    def counted() -> bool:
        return delta(scrape(server), before, closed, code="1000") == 1

    await eventually(counted, "close counted")
    after = await asyncio.to_thread(scrape, server)
    assert delta(after, before, "wscommands_connections") == 0
    # A frame over the size limit closes with 4413 and is counted as refused.
    async with connect(server.ws, max_size=None) as ws:
        await ws.send("x" * (300 * 1024))
        await ws.wait_closed()
        assert ws.close_code == 4413

    def refused() -> bool:
        now = scrape(server)
        return (
            delta(now, before, "wscommands_frames_refused_total", reason="too_big") == 1
            and delta(now, before, closed, code="4413") == 1
        )

    await eventually(refused, "4413 counted")


async def test_layer_round_trip_is_measured(pair):
    """The hub's canary (every HEALTH_CHECK_INTERVAL) feeds the round-trip histogram."""
    server = pair[0]
    async with connect(server.ws) as ws:
        await ws.send(json.dumps({"echo": {"text": "x"}, "request_id": 1}))
        await ws.recv()
        first = await asyncio.to_thread(scrape, server)
        name = "wscommands_layer_round_trip_seconds"
        now: Samples = {}

        def measured() -> bool:
            now.update(scrape(server))
            return delta(now, first, f"{name}_count") >= 2

        await eventually(measured, "two canaries", timeout=15)
    # Each canary's round trip took some time, and each landed in the histogram's buckets.
    canaries = delta(now, first, f"{name}_count")
    assert delta(now, first, f"{name}_sum") > 0
    assert delta(now, first, f"{name}_bucket", le="+Inf") == canaries


async def test_resume_outcomes_are_counted(pair):
    """A resume that recovers ``all`` (two missed pushes) and names an unknown stream."""
    one, _ = pair
    before = await asyncio.to_thread(scrape, one)
    async with connect(one.ws + "?resume=1") as away, connect(one.ws) as sender:
        while "all" not in (streams := json.loads(await away.recv())).get("wscommands.streams", {}):
            pass
        position = streams["wscommands.streams"]["all"]
        await away.close()
        for i in range(2):
            message = {"probe.broadcast": {"message": {"missed": i}}, "request_id": i}
            await sender.send(json.dumps(message))
            while json.loads(await sender.recv()).get("request_id") != i:
                pass
        async with connect(one.ws + "?resume=1") as back:
            resume = {"streams": {"all": position, "no-such-stream": position}}
            await back.send(json.dumps({"wscommands.resume": resume, "request_id": "r"}))
            while (reply := json.loads(await back.recv())).get("request_id") != "r":
                pass
    assert reply["wscommands.resume"]["all"]["recovered"] is True
    assert reply["wscommands.resume"]["no-such-stream"]["reason"] == "invalid"
    after = await asyncio.to_thread(scrape, one)
    streams_total = "wscommands_resume_streams_total"
    assert delta(after, before, streams_total, outcome="recovered") == 1
    assert delta(after, before, streams_total, outcome="invalid") == 1
    assert delta(after, before, "wscommands_resume_replayed_pushes_total") == 2


async def test_hub_starts_on_a_healthy_redis_count_no_lost_canary(sqlite_env, redis_url):
    """A hub start (and a restart, after its last connection left) on a healthy Redis: every
    canary comes back, none counts as lost (the shipped alert counts lost canaries)."""
    env = {
        **sqlite_env,
        "REDIS_URL": redis_url,
        "WSCOMMANDS_METRICS_TOKEN": TOKEN,
        "WSCOMMANDS_PRESENCE_EVENTS": "0",
        "WSCOMMANDS_LIMITS": json.dumps({"PREFIX": f"canary-{secrets.token_hex(3)}"}),
    }
    server = Server(env).start()
    trips = "wscommands_layer_round_trip_seconds_count"
    try:
        for _ in range(2):  # a start, then a stop and a second start of the same hub
            before = await asyncio.to_thread(scrape, server)
            async with connect(server.ws) as ws:
                await ws.send(json.dumps({"echo": {"text": "x"}, "request_id": 1}))
                await ws.recv()

                def returned(before: Samples = before) -> bool:
                    return delta(scrape(server), before, trips) >= 2

                await eventually(returned, "two canaries came back", timeout=20)
        samples = await asyncio.to_thread(scrape, server)
        assert value(samples, "wscommands_layer_canary_failures_total") == 0
    finally:
        server.stop()
