"""Until the engine knows who a request is, its sync calls are an anonymous client's.

Loading a session's user (a handshake or ``GET /metrics`` with a session cookie) takes a
worker thread. Counted as nobody's, such calls escaped the pool's fair shares: a flood of
forged session cookies queued in front of every logged-in user's sync command (the
penetration test of issue 20 measured a logged-in ``add`` going from 1.2 ms to 815 ms under
400 flooders). They are now held to ``ANONYMOUS_WORKER_SHARE`` and the per-IP cap like any
anonymous call; a request without a cookie makes no call at all, and a scrape with
``METRICS_TOKEN`` (Prometheus) waits for no anonymous work.

Shown by order of events, not by timings: with two worker threads, one of them anonymous,
an anonymous ``sleep`` holds the anonymous thread while another anonymous call waits (the
pool's queue says so); then a logged-in ``add`` and a token scrape are answered before the
sleep ends, a forged-cookie scrape and a forged-cookie handshake only after it.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.require import require
from tests.scaleout.client import WSClient
from tests.test_e2e import log_in

pytestmark = [pytest.mark.e2e]

TOKEN = "pool-shares-token"
LIMITS = {"WORKER_THREADS": 2, "ANONYMOUS_WORKER_SHARE": 0.5, "METRICS_TOKEN": TOKEN}
FORGED = "sessionid=" + "f" * 32


@pytest.fixture(autouse=True)
def _picows() -> None:
    require("picows")


async def get_metrics(port: int, header: str) -> tuple[int, str]:
    """``GET /metrics`` with one extra header line; (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n{header}\r\n\r\n".encode())
    answer = (await reader.read()).decode()
    writer.close()
    return int(answer[9:12]), answer.partition("\r\n\r\n")[2]


async def queued_calls(port: int) -> float:
    status, body = await get_metrics(port, f"Authorization: Bearer {TOKEN}")
    assert status == 200, body
    return float(re.search(r"^wscommands_worker_queue_length (\S+)$", body, re.M).group(1))


async def test_unidentified_requests_are_held_to_the_anonymous_share(live):
    daphne = live(**LIMITS)  # for the sign-in form only
    engine = live(kind="engine", **LIMITS)
    session_key, _ = await asyncio.to_thread(log_in, daphne, "rel", "pw")
    user = await WSClient.open(engine.ws, session_key=session_key)
    first, second = await WSClient.open(engine.ws), await WSClient.open(engine.ws)

    done: list[str] = []

    async def mark(name: str, call) -> object:
        result = await call
        done.append(name)
        return result

    sleeping = asyncio.create_task(mark("sleep", first.call("sleep", seconds=3)))
    waiting = asyncio.create_task(mark("second sleep", second.call("sleep", seconds=0)))
    # The first sleep holds the one anonymous thread once the second waits for it.
    async with asyncio.timeout(15):
        while await queued_calls(engine.port) < 1:
            await asyncio.sleep(0.05)

    assert await mark("add", user.call("add", a=1, b=2)) == 3
    status, _ = await mark(
        "token scrape", get_metrics(engine.port, f"Authorization: Bearer {TOKEN}")
    )
    assert status == 200
    forged_scrape = asyncio.create_task(
        mark("forged scrape", get_metrics(engine.port, f"Cookie: {FORGED}"))
    )
    forged_open = asyncio.create_task(
        mark("forged handshake", WSClient.open(engine.ws, session_key="f" * 32))
    )
    status, _ = await get_metrics(engine.port, "X-Nothing: 1")  # no cookie: no call to wait for
    assert status == 403 and "sleep" not in done

    await asyncio.gather(sleeping, waiting)
    assert (await forged_scrape)[0] == 403
    await (await forged_open).close()
    assert done.index("add") < done.index("sleep")
    assert done.index("token scrape") < done.index("sleep")
    assert done.index("forged scrape") > done.index("sleep")
    assert done.index("forged handshake") > done.index("sleep")
    for client in (user, first, second):
        await client.close()
