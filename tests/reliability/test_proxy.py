"""The deployment users run: deploy/nginx.conf for real, on this machine.

nginx (Debian's; ``.ci/run`` installs it) runs the very configuration docker-compose.yml
mounts, with only its addresses, certificate and log paths made local, in front of a real
daphne (HTTP) and a real engine (``/ws/``) started as compose starts them (``--proxy-headers``,
``--forwarded-allow-ips "*"``, ``DJANGO_HTTPS=1``). WebSockets reach the engine and HTTP
reaches daphne on one port; the engine checks the Origin against the proxied Host and scheme
and counts clients by nginx's ``X-Forwarded-For``. Half-open upgrade requests are cut by the
proxy within its header timeout while a legitimate client connects and talks through it; past
the per-IP limit of open WebSockets the proxy answers 429.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import re
import ssl
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from deploy.selfsigned import write_certificate
from tests.live import ROOT, Server, free_port, wait_for_port
from tests.require import require

pytestmark = pytest.mark.e2e

CONFIG = (ROOT / "deploy" / "nginx.conf").read_text()
#: The attack of issue 10: one header line every 20 s from each of 1,010 sockets, here on
#: the plain-HTTP listener (cheap to open), plus some through TLS on the HTTPS one.
HALF_OPEN = 1010
HALF_OPEN_TLS = 200
DRIP_INTERVAL = 20.0
PER_IP_WEBSOCKETS = 100  # deploy/nginx.conf's limit_conn per_ip


def local_config(upstream: int, engine: int, http: int, https: int, directory: Path) -> str:
    """deploy/nginx.conf with local addresses and paths: nothing else changed."""
    text = CONFIG
    for old, new, count in (
        ("server web1:8000;\n        server web2:8000;", f"server 127.0.0.1:{upstream};", 1),
        ("server engine1:8001;\n        server engine2:8001;", f"server 127.0.0.1:{engine};", 1),
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
    """nginx on deploy/nginx.conf in front of one daphne (``web``) and one engine."""

    def __init__(self, web: Server, engine: Server, directory: Path):
        self.directory = directory
        self.web, self.engine = web, engine
        self.http, self.https = free_port(), free_port()
        write_certificate(directory, ["localhost", "127.0.0.1"])
        self.config = directory / "nginx.conf"
        self.config.write_text(
            local_config(web.port, engine.port, self.http, self.https, directory)
        )
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

    @property
    def origin(self) -> str:
        """The site's own origin: what a browser on its pages sends."""
        return f"https://localhost:{self.https}"

    def ws(self, origin: str | None = None, **kwargs) -> connect:
        """A browser on https://localhost:PORT/ (or on ``origin``) opening its WebSocket
        through the proxy; ``local_addr=("127.0.0.2", 0)`` makes it another client IP."""
        return connect(
            f"wss://localhost:{self.https}/ws/",
            ssl=self.tls,
            host="127.0.0.1",
            port=self.https,
            origin=origin or self.origin,
            open_timeout=30,
            **kwargs,
        )


@pytest.fixture
def deployment(live, tmp_path) -> Iterator[Callable[..., Proxy]]:
    """``deployment(**limits)``: nginx in front of a daphne and an engine started as
    docker-compose.yml starts them, the engine with the WSCOMMANDS ``limits``."""
    require("nginx")
    require("picows")
    started: list[Proxy] = []

    def start(**limits: Any) -> Proxy:
        env = {"DJANGO_HTTPS": "1"}
        web = live(env=env, args=("--proxy-headers",))
        engine = live(env=env, kind="engine", args=("--forwarded-allow-ips", "*"), **limits)
        directory = tmp_path / f"nginx{len(started)}"
        directory.mkdir()
        proxy = Proxy(web, engine, directory)
        started.append(proxy)
        return proxy.start()

    yield start
    for proxy in started:
        proxy.stop()


@pytest.fixture
def proxy(deployment) -> Proxy:
    """The deployment; the per-IP cap is nginx's here, not wscommands'."""
    return deployment(MAX_CONNECTIONS_PER_IP=None)


async def echo(ws: ClientConnection, text: str) -> dict:
    await ws.send(json.dumps({"echo": {"text": text}, "request_id": 1}))
    return json.loads(await ws.recv())


def sign_in(proxy: Proxy, username: str) -> str:
    """Sign in with the login form through the proxy (HTTPS, CSRF and all): the session key."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=proxy.tls), urllib.request.HTTPCookieProcessor(jar)
    )
    login = f"{proxy.origin}/accounts/login/"
    page = opener.open(login, timeout=30).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode(
        {"username": username, "password": "pw", "csrfmiddlewaretoken": token}
    )
    request = urllib.request.Request(login, form.encode(), headers={"Referer": login})
    opener.open(request, timeout=30).read()
    return next(cookie.value for cookie in jar if cookie.name == "sessionid")


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


async def test_websockets_reach_the_engine_and_pages_reach_daphne(proxy):
    """One port: /ws/ is served by the engine (its process answers), the sign-in form by
    daphne; the session made through the proxy identifies the user at the engine's handshake."""
    async with proxy.ws() as ws:
        await ws.send(json.dumps({"probe.pid": {}, "request_id": 1}))
        assert json.loads(await ws.recv())["probe.pid"] == proxy.engine.process.pid
    key = await asyncio.to_thread(sign_in, proxy, "rel")
    async with proxy.ws(additional_headers={"Cookie": f"sessionid={key}"}) as ws:
        await ws.send(json.dumps({"whoami": {}, "request_id": 1}))
        who = json.loads(await ws.recv())["whoami"]
        assert (who["authenticated"], who["username"]) == (True, "rel")


async def test_the_engine_checks_the_origin_behind_the_proxy(proxy):
    """The engine compares the Origin with the Host and scheme nginx forwards: the site's own
    https page opens; another site, the same host over http or on another port, and null get
    HTTP 403 through the proxy."""
    async with proxy.ws() as ws:
        assert (await echo(ws, "same origin"))["echo"] == {"text": "same origin"}
    for origin in (
        "https://evil.example",
        f"http://localhost:{proxy.https}",
        "https://localhost",
        "null",
    ):
        with pytest.raises(InvalidStatus) as refused:
            async with proxy.ws(origin=origin):
                pass
        assert refused.value.response.status_code == 403, origin


async def test_per_ip_caps_count_the_clients_nginx_forwards(deployment):
    """MAX_CONNECTIONS_PER_IP = 2 on the engine, every connection arriving from nginx's
    address: a client's third socket is closed with 4429, while another client (another
    loopback address) is let in: the engine counts X-Forwarded-For's client, not the proxy."""
    proxy = deployment(MAX_CONNECTIONS_PER_IP=2)
    ann, bob = ("127.0.0.2", 0), ("127.0.0.3", 0)
    async with proxy.ws(local_addr=ann) as first, proxy.ws(local_addr=ann) as second:
        for ws in (first, second):
            assert (await echo(ws, "ann"))["echo"] == {"text": "ann"}
        async with proxy.ws(local_addr=ann) as third:
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(third.recv(), 30)
        assert third.close_code == 4429
        async with proxy.ws(local_addr=bob) as other:
            assert (await echo(other, "bob"))["echo"] == {"text": "bob"}
