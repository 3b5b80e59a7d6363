"""``GET /metrics`` on the engine's own port: the answers daphne's Django view gives, for
the same requests (token, no credentials, staff and non-staff sessions, metrics off), with
the engine process's own figures; and nothing else of HTTP."""

from __future__ import annotations

import asyncio
import http.client
from dataclasses import dataclass, replace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.live import Server, create_user
from tests.reliability.test_engine import raw_answer
from tests.require import require
from tests.scaleout.client import WSClient
from tests.test_e2e import log_in

pytestmark = [pytest.mark.e2e]

TOKEN = "engine-metrics-token-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
STAFF = "metrics-staff"


@dataclass(frozen=True)
class Answer:
    """What a server answered: the parts both servers must agree on."""

    status: int
    content_type: str | None
    cache_control: str | None
    body: bytes


def fetch(server: Server, headers: dict[str, str]) -> Answer:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("GET", "/metrics", headers=headers)
        response = connection.getresponse()
        return Answer(
            response.status,
            response.getheader("Content-Type"),
            response.getheader("Cache-Control"),
            response.read(),
        )
    finally:
        connection.close()


async def both(daphne: Server, engine: Server, headers: dict[str, str]) -> Answer:
    """The engine's answer, once checked to be daphne's (bodies too, but for the figures)."""
    on_daphne = await asyncio.to_thread(fetch, daphne, headers)
    on_engine = await asyncio.to_thread(fetch, engine, headers)
    if on_engine.status == 200:
        assert on_engine.body.startswith(b"# HELP"), on_engine.body[:200]
        assert on_daphne.body.startswith(b"# HELP"), on_daphne.body[:200]
        assert replace(on_engine, body=b"") == replace(on_daphne, body=b"")
    else:
        assert on_engine == on_daphne
    return on_engine


def echoes(answer: Answer) -> float:
    """How many ``echo`` commands succeeded, by the figures of ``answer``'s process."""
    for family in text_string_to_metric_families(answer.body.decode()):
        for sample in family.samples:
            if sample.name == "wscommands_command_duration_seconds_count" and sample.labels == {
                "command": "echo",
                "outcome": "ok",
            }:
                return sample.value
    return 0.0


@pytest.fixture(autouse=True)
def _picows() -> None:
    require("picows")


@pytest.fixture(scope="session")
def staff_user(reliability_db) -> str:
    """A staff user (password ``pw``) in the live servers' database; its username."""
    create_user(reliability_db, STAFF, "pw", staff=True)
    return STAFF


@pytest.fixture
def servers(live):
    """``servers(**limits)``: a daphne and an engine with the metrics token, on one database."""

    def start(args: tuple[str, ...] = (), **limits):
        env = {"WSCOMMANDS_METRICS_TOKEN": TOKEN}
        return live(env, **limits), live(env, kind="engine", args=args, **limits)

    return start


async def test_the_token_reads_the_engine_process_s_own_metrics(servers):
    """200 and Prometheus text as daphne's; the engine's echo count moves with the echoes
    run on the engine, daphne's does not."""
    daphne, engine = servers()
    before = echoes(await both(daphne, engine, BEARER))
    client = await WSClient.open(engine.ws)
    for n in range(3):
        assert await client.call("echo", text=str(n)) == {"text": str(n)}
    await client.close()
    on_engine = await both(daphne, engine, BEARER)
    assert on_engine.status == 200
    assert echoes(on_engine) == before + 3
    assert echoes(await asyncio.to_thread(fetch, daphne, BEARER)) == 0


async def test_without_credentials_or_with_a_wrong_token_403_as_daphne(servers):
    daphne, engine = servers()
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": TOKEN},
    ):
        answer = await both(daphne, engine, headers)
        assert answer.status == 403, headers
        assert b"METRICS_TOKEN" in answer.body


async def test_a_staff_session_reads_them_and_a_non_staff_one_gets_403_as_daphne(
    servers, staff_user
):
    daphne, engine = servers()
    staff_key, _ = await asyncio.to_thread(log_in, daphne, staff_user, "pw")
    other_key, _ = await asyncio.to_thread(log_in, daphne, "rel", "pw")
    assert (await both(daphne, engine, {"Cookie": f"sessionid={staff_key}"})).status == 200
    assert (await both(daphne, engine, {"Cookie": f"sessionid={other_key}"})).status == 403
    assert (await both(daphne, engine, {"Cookie": "sessionid=not-a-session"})).status == 403


async def test_with_metrics_off_404_as_daphne_even_for_the_token(servers):
    daphne, engine = servers(METRICS=False)
    answer = await both(daphne, engine, BEARER)
    assert (answer.status, answer.body) == (
        404,
        b"metrics are off: WSCOMMANDS['METRICS'] is False\n",
    )


async def test_one_answer_per_connection_and_every_other_request_keeps_its_answer(servers):
    """The metrics request is answered and the connection closed (a second request in the
    same write is not read); the head's size and time limits apply; an upgrade to /metrics,
    another method or path get the handshake's answers, and the engine still serves."""
    _, engine = servers(args=("--handshake-timeout", "0.5"))
    get = b"GET /metrics?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + TOKEN.encode()
    answer = await raw_answer(engine.port, get + b"\r\n\r\n" + get + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.count(b"HTTP/1.1") == 1 and b"Connection: close\r\n" in answer
    upgrade = (
        b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    cases = {
        b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n": b"403",
        upgrade: b"404",  # a WebSocket on another path than --path
        b"POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n": b"405",
        b"GET /metrics/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n": b"400",
        b"GET /other HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n": b"400",
        b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n": b"408",  # never finished
        b"GET /metrics HTTP/1.1\r\nX: " + b"x" * 20_000 + b"\r\n\r\n": b"431",
    }
    for request, status in cases.items():
        answer = await raw_answer(engine.port, request)
        assert answer.startswith(b"HTTP/1.1 " + status), (request[:60], answer)
    client = await WSClient.open(engine.ws)
    assert (await client.call("echo", text="ok")) == {"text": "ok"}
    await client.close()
    assert "Traceback" not in engine.log()


async def test_a_host_outside_allowed_hosts_gets_400_as_daphne(servers):
    """Django answers 400 before its view runs when the Host is not in ALLOWED_HOSTS: so
    does the engine, even for the token (a rebound DNS name reaches no figures)."""
    daphne, engine = servers()
    for host in ("evil.example", "127.0.0.1.evil.example", "bad host"):
        on_daphne = await asyncio.to_thread(fetch, daphne, {**BEARER, "Host": host})
        on_engine = await asyncio.to_thread(fetch, engine, {**BEARER, "Host": host})
        assert (on_engine.status, on_daphne.status) == (400, 400), host
        assert b"ALLOWED_HOSTS" in on_engine.body
    assert (await asyncio.to_thread(fetch, engine, {**BEARER, "Host": "localhost"})).status == 200
