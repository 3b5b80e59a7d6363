"""Slowloris through the deployment users run: deploy/nginx.conf for real, on this machine.

nginx (Debian's; ``.ci/run`` installs it) runs the very configuration docker-compose.yml
mounts, with only its addresses, certificate and log paths made local, in front of a real
daphne started as compose starts it (``--proxy-headers``, ``DJANGO_HTTPS=1``). Half-open
upgrade requests are cut by the proxy within its header timeout while a legitimate client
connects and talks through it; past the per-IP limit of open WebSockets the proxy answers 429.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from deploy.selfsigned import write_certificate
from tests.live import ROOT, free_port, wait_for_port
from tests.require import require

pytestmark = pytest.mark.e2e

CONFIG = (ROOT / "deploy" / "nginx.conf").read_text()
#: The attack of issue 10: one header line every 20 s from each of 1,010 sockets, here on
#: the plain-HTTP listener (cheap to open), plus some through TLS on the HTTPS one.
HALF_OPEN = 1010
HALF_OPEN_TLS = 200
DRIP_INTERVAL = 20.0
PER_IP_WEBSOCKETS = 100  # deploy/nginx.conf's limit_conn per_ip


def local_config(upstream: int, http: int, https: int, directory: Path) -> str:
    """deploy/nginx.conf with local addresses and paths: nothing else changed."""
    text = CONFIG
    for old, new, count in (
        ("server web1:8000;\n        server web2:8000;", f"server 127.0.0.1:{upstream};", 1),
        ("listen 80;", f"listen 127.0.0.1:{http};", 1),
        ("listen 443 ssl;", f"listen 127.0.0.1:{https} ssl;", 1),
        ("/etc/nginx/certs/", f"{directory}/", 2),
        ("/var/log/nginx/error.log", f"{directory}/error.log", 1),
        ("/var/log/nginx/access.log", f"{directory}/access.log", 1),
    ):
        assert text.count(old) == count, f"deploy/nginx.conf changed: {old!r}"
        text = text.replace(old, new)
    return text


class Proxy:
    """nginx on deploy/nginx.conf in front of one upstream port."""

    def __init__(self, upstream: int, directory: Path):
        self.directory = directory
        self.http, self.https = free_port(), free_port()
        write_certificate(directory, ["localhost", "127.0.0.1"])
        self.config = directory / "nginx.conf"
        self.config.write_text(local_config(upstream, self.http, self.https, directory))
        self.tls = ssl.create_default_context(cafile=directory / "tls.crt")
        self.process: subprocess.Popen | None = None

    def command(self, *extra: str) -> list[str]:
        return [
            require("nginx"),
            *("-p", str(self.directory), "-c", str(self.config), "-e", "stderr"),
            *("-g", f"daemon off; pid {self.directory}/nginx.pid;", *extra),
        ]

    def start(self) -> Proxy:
        checked = subprocess.run(self.command("-t"), capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, checked.stderr
        self.process = subprocess.Popen(self.command(), stderr=subprocess.DEVNULL)
        wait_for_port(self.https, self.process)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(15)

    def ws(self, **kwargs) -> connect:
        """A browser on https://localhost:PORT/ opening its WebSocket through the proxy."""
        origin = f"https://localhost:{self.https}"
        return connect(
            f"wss://localhost:{self.https}/ws/",
            ssl=self.tls,
            host="127.0.0.1",
            port=self.https,
            origin=origin,
            open_timeout=30,
            **kwargs,
        )


@pytest.fixture
def proxy(live, tmp_path) -> Iterator[Proxy]:
    require("nginx")
    # As docker-compose.yml runs daphne; the per-IP cap is nginx's here, not wscommands'.
    server = live(env={"DJANGO_HTTPS": "1"}, args=("--proxy-headers",), MAX_CONNECTIONS_PER_IP=None)
    proxy = Proxy(server.port, tmp_path).start()
    yield proxy
    proxy.stop()


async def echo(ws: ClientConnection, text: str) -> dict:
    await ws.send(json.dumps({"echo": {"text": text}, "request_id": 1}))
    return json.loads(await ws.recv())


async def half_open(
    proxy: Proxy, tls: bool
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, float]:
    """A connection that starts an upgrade request and never finishes its header."""
    if tls:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", proxy.https, ssl=proxy.tls, server_hostname="localhost"
        )
    else:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.http)
    opened = time.monotonic()
    writer.write(b"GET /ws/ HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n")
    await writer.drain()
    return reader, writer, opened


async def held_for(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, opened: float):
    """Seconds until the proxy dropped the connection; None if it still held it when the
    attacker's next header line was due (what slowloris needs)."""
    try:
        async with asyncio.timeout(DRIP_INTERVAL):
            while await reader.read(1024):
                pass
    except TimeoutError:
        return None
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()
    return time.monotonic() - opened


async def test_slowloris_is_cut_by_the_proxy_while_a_client_connects(proxy):
    """1,010 half-open upgrade requests (and 200 more through TLS) are all dropped before
    their next header line would be due, and a legitimate client opens its WebSocket and is
    answered meanwhile."""
    started = time.monotonic()
    async with proxy.ws() as ws:
        assert (await echo(ws, "idle"))["echo"] == {"text": "idle"}
    idle = time.monotonic() - started
    opened = 0
    all_open = asyncio.Event()
    handshakes = asyncio.Semaphore(50)  # more at once overflow the listen backlog (resets)

    async def attack(tls: bool) -> float | None:
        nonlocal opened
        async with handshakes:
            connection = await half_open(proxy, tls)
        opened += 1
        if opened == HALF_OPEN + HALF_OPEN_TLS:
            all_open.set()
        # Watched from the moment it is open: the proxy's clock starts then.
        return await held_for(*connection)

    watched = [asyncio.create_task(attack(tls=False)) for _ in range(HALF_OPEN)]
    watched += [asyncio.create_task(attack(tls=True)) for _ in range(HALF_OPEN_TLS)]
    await asyncio.wait_for(all_open.wait(), 120)
    still_open = sum(not task.done() for task in watched)
    started = time.monotonic()
    async with proxy.ws() as ws:
        assert (await echo(ws, "during the attack"))["echo"] == {"text": "during the attack"}
    legitimate = time.monotonic() - started
    held = await asyncio.gather(*watched)
    assert None not in held, f"{held.count(None)} half-open connections outlived the drip"
    print(
        f"slowloris: {HALF_OPEN}+{HALF_OPEN_TLS} half-open upgrades ({still_open} open when "
        f"the legitimate client came) cut after {min(held):.1f}-{max(held):.1f} s; "
        f"legitimate TLS connect+echo {legitimate * 1000:.0f} ms during the attack, "
        f"{idle * 1000:.0f} ms idle"
    )
    async with proxy.ws() as ws:
        assert (await echo(ws, "after"))["echo"] == {"text": "after"}


async def test_open_websockets_per_ip_are_capped_by_the_proxy(proxy):
    """The 101st WebSocket from one IP gets HTTP 429 from nginx; closing one frees a slot."""
    opened = []
    try:
        for _ in range(PER_IP_WEBSOCKETS):
            opened.append(await proxy.ws().__aenter__())
        with pytest.raises(InvalidStatus) as refused:
            async with proxy.ws():
                pass
        assert refused.value.response.status_code == 429
        await opened.pop().close()
        async with proxy.ws() as ws:
            assert (await echo(ws, "slot freed"))["echo"] == {"text": "slot freed"}
    finally:
        for ws in opened:
            await ws.close()
