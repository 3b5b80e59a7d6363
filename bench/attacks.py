"""``python -m bench.attacks``: the resource attacks of issue 10 against a real daphne.

For each attack: the server's RSS before, at its peak during, and 2 s after the attacker
left; and the echo latency of a well-behaved client (p50 idle, then p50 and max during the
attack). Prints one Markdown table row per attack (docs/reliability.md). The example
project's settings, as users run it; ``WSCOMMANDS_LIMITS`` in the environment changes them
as it does for the example (e.g. the generous flood limits the issue's figures were taken
with: ``{"RATE_LIMIT": 5000, "RATE_LIMIT_BURST": 10000, "MAX_PENDING_REQUESTS": 1024}``).
Loopback only; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from wscommands.wire.jsoncodec import decode

from .servers import ROOT, Server, start_all

#: Seconds each attack runs at most.
ATTACK_SECONDS = 8.0


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_daphne(workdir: Path) -> Server:
    """The example project on daphne, with a SQLite database and a user ``bench``/``pw``."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL",)}
    env.update(
        DJANGO_SETTINGS_MODULE="project.settings",
        DATABASE_URL=f"sqlite:///{workdir / 'attacks.sqlite3'}",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        PYTHONUNBUFFERED="1",
    )
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(
        env,
        "shell",
        "-c",
        "from django.contrib.auth.models import User; "
        "User.objects.filter(username='bench').exists() or "
        "User.objects.create_user('bench', password='pw')",
    )
    return start_all([Server("wscommands", "daphne", env, log_dir=workdir)])[0]


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, timeout=120)


class Peak:
    """Samples a process's RSS every 20 ms in a thread; ``peak`` is the highest seen."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak = rss_mib(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mib(self.pid))

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def echo_latencies(ws: ClientConnection, stop: asyncio.Event, pause: float = 0.02) -> list:
    """Echo round trips (ms) of a well-behaved client until ``stop`` is set."""
    latencies = []
    n = 0
    while not stop.is_set() and n < 2000:
        n += 1
        started = time.perf_counter()
        await ws.send(json.dumps({"echo": {"text": "ping"}, "request_id": n}))
        while json.loads(await ws.recv()).get("request_id") != n:
            pass
        latencies.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(pause)
    return latencies


async def send(ws: ClientConnection, text: str) -> bool:
    """Send a frame; False once the server has closed the connection."""
    try:
        await ws.send(text)
    except ConnectionClosed:
        return False
    return True


async def drain(ws: ClientConnection) -> None:
    """Read and drop everything a connection receives until it closes."""
    try:
        async for _ in ws:
            pass
    except ConnectionClosed:
        pass


# The attacks: each gets the server's URL and returns a short note of what the server did.


async def remind_timers(url: str) -> str:
    async with connect(url, max_size=None) as ws:
        reader = asyncio.ensure_future(_count_codes(ws))
        big = json.dumps({"remind": {"seconds": 3600, "text": "x" * 200 * 1024}})
        for _ in range(300):
            if not await send(ws, big):
                break
        for i in range(2000):
            if not await send(ws, json.dumps({"remind": {"seconds": 3600, "text": "x" * 1000}})):
                break
            if i % 100 == 0:
                await asyncio.sleep(0)
        await asyncio.sleep(2)
        await ws.close()
        return _summary(await reader, ws)


async def queued_behind_slow(url: str) -> str:
    async with connect(url, max_size=None) as ws:
        reader = asyncio.ensure_future(_count_codes(ws))
        await send(ws, json.dumps({"sleep": {"seconds": 5}}))
        padding = "p" * 250_000
        for _ in range(300):
            if not await send(ws, json.dumps({"echo": {"text": padding}})):
                break
        await asyncio.sleep(1)
        await ws.close()
        return _summary(await reader, ws)


async def sync_sleepers(url: str) -> str:
    sockets = [await connect(url) for _ in range(16)]
    for ws in sockets:
        for _ in range(2):
            await ws.send(json.dumps({"sleep": {"seconds": 4}}))
    await asyncio.sleep(ATTACK_SECONDS)
    for ws in sockets:
        await ws.close()
    return "16 sockets x 2 sleep(4)"


async def many_commands(url: str) -> str:
    frame = json.dumps({f"c{i}": {} for i in range(10_000)})
    sockets = [await connect(url, max_size=None) for _ in range(3)]
    readers = [asyncio.ensure_future(_count_codes(ws)) for ws in sockets]
    deadline = time.monotonic() + ATTACK_SECONDS
    sent = 0
    while time.monotonic() < deadline and sent < 3000:
        for ws in sockets:
            sent += await send(ws, frame)
        await asyncio.sleep(0.01)
    for ws in sockets:
        await ws.close()
    codes = [await r for r in readers]
    return f"{sent} frames of {len(frame) // 1000} KB; " + _summary(codes[0], sockets[0])


async def joins(url: str) -> str:
    async with connect(url) as ws:
        counts: dict[str, int] = {}
        for batch in range(50):  # 50 batches of 50 pipelined joins
            try:
                for i in range(50):
                    room = f"room{batch * 50 + i}"
                    await ws.send(json.dumps({"chat.join": {"room": room}, "request_id": i}))
                for _ in range(50):
                    _count(json.loads(await ws.recv()), counts)
            except ConnectionClosed:
                break
        return _summary(counts, ws)


def big_frames(kind: str) -> Callable[[str], Awaitable[str]]:
    body = "7" * 250_000 if kind == "digits" else "[" * 125_000 + "]" * 125_000

    async def attack(url: str) -> str:
        frame = '{"echo": {"text": ' + body + "}}"
        async with connect(url, max_size=None) as ws:
            reader = asyncio.ensure_future(_count_codes(ws))
            deadline = time.monotonic() + ATTACK_SECONDS
            sent = 0
            while time.monotonic() < deadline and sent < 800:
                if not await send(ws, frame):
                    break
                sent += 1
                await asyncio.sleep(0.01)  # about the example's allowance: many frames/s
            await ws.close()
            return f"{sent} frames; " + _summary(await reader, ws)

    return attack


async def two_mib_frame(url: str) -> str:
    closes = []
    for _ in range(5):
        async with connect(url, max_size=None) as ws:
            await send(ws, json.dumps({"echo": {"text": "x" * 2 * 1024 * 1024}}))
            await drain(ws)
            rcvd = ws.protocol.close_rcvd
            closes.append(str(rcvd.code) if rcvd else "1006 (no close frame)")
    return "closes: " + ", ".join(sorted(set(closes)))


async def _count_codes(ws: ClientConnection) -> dict[str, int]:
    counts: dict[str, int] = {}
    try:
        async for text in ws:
            _count(json.loads(text), counts)
    except ConnectionClosed:
        pass
    return counts


def _count(message: dict, counts: dict[str, int]) -> None:
    """Count a reply by its error codes (and the limit they name), or as "ok"."""
    for name, entry in (message.get("errors") or {}).items():
        if isinstance(entry, dict):
            detail = (entry.get("details") or {}).get("limit")
            key = f"{entry.get('code')}" + (f" ({detail})" if detail else "")
        else:
            key = name
        counts[key] = counts.get(key, 0) + 1
    if "errors" not in message:
        counts["ok"] = counts.get("ok", 0) + 1


def _summary(counts: dict[str, int], ws: ClientConnection) -> str:
    parts = [f"{n} {key}" for key, n in sorted(counts.items(), key=lambda kv: -kv[1])[:5]]
    rcvd = ws.protocol.close_rcvd
    closed = f"closed {rcvd.code}" if rcvd and rcvd.code != 1000 else ""
    return "; ".join(filter(None, [", ".join(parts), closed]))


async def replay_flood(url: str) -> str:
    """Issue 18: 500 broadcasts in history, then one anonymous socket asks, 108 times, for
    the 500 again (``wscommands.resume`` of ``all`` at current - 499): each push is sent to
    it once, later asks cost nothing."""
    async with connect(url) as filler:  # within the example's 100 frames/s
        for i in range(500):
            await filler.send(json.dumps({"counter.increment": {}, "request_id": i}))
            while json.loads(await filler.recv()).get("request_id") != i:
                pass
            await asyncio.sleep(0.012)
    frames = received = 0
    async with connect(url + "?resume=1", max_size=None, max_queue=None) as ws:
        announced = json.loads(await ws.recv())["wscommands.streams"]["all"]
        position = {**announced, "offset": max(announced["offset"] - 499, 0)}
        request = json.dumps({"wscommands.resume": {"streams": {"all": position}}})
        reasons: dict[str, int] = {}
        for n in range(108):
            await ws.send(json.dumps({**json.loads(request), "request_id": n}))
            frames += 1
            while True:
                message = json.loads(await ws.recv())
                received += 1
                if message.get("request_id") == n:
                    entry = (message.get("wscommands.resume") or {}).get("all") or {}
                    key = entry.get("reason", "recovered")
                    reasons[key] = reasons.get(key, 0) + 1
                    break
    verdicts = ", ".join(f"{n} {k}" for k, n in reasons.items())
    return f"{frames} resumes brought back {received} frames ({verdicts})"


ATTACKS: dict[str, Callable[[str], Awaitable[str]]] = {
    "remind timers (300 x 200 KiB, 2,000 x 1 KB; 3600 s)": remind_timers,
    "requests queued behind a slow one (300 x 250 KB)": queued_behind_slow,
    "16 sockets calling the sync sleep": sync_sleepers,
    "frames of 10,000 commands (3 sockets)": many_commands,
    "2500 joins on one socket": joins,
    "256 KB frames of digits": big_frames("digits"),
    "256 KB frames of brackets": big_frames("brackets"),
    "2 MiB frame (5 tries)": two_mib_frame,
    "replay flood (108 resumes of 500 pushes)": replay_flood,
}


async def run_attacker(name: str, url: str) -> str:
    """Run one attack in a process of its own; returns its note.

    The attacker's own work (encoding megabytes of JSON, masking frames) would otherwise
    stall this process's event loop, and the well-behaved client's latencies would measure
    the attacker, not the server.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.attacks",
        "--attacker",
        name,
        url,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(ATTACK_SECONDS + 30):
            out, _ = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        return "attack did not finish"
    return out.decode().strip() or f"attacker exited with {process.returncode}"


async def run_one(server: Server, name: str) -> str:
    async with connect(server.url) as watcher:
        idle = await echo_latencies(watcher, set_after(2.0))
        before = rss_mib(server.pid)
        with Peak(server.pid) as peak:
            stop = asyncio.Event()
            during = asyncio.ensure_future(echo_latencies(watcher, stop))
            note = await run_attacker(name, server.url)
            stop.set()
            busy = await during
        await asyncio.sleep(2)
        after = rss_mib(server.pid)
    p50_idle = statistics.median(idle)
    p50 = statistics.median(busy) if busy else float("nan")
    worst = max(busy) if busy else float("nan")
    return (
        f"| {name} | {before:.0f} / {peak.peak:.0f} / {after:.0f} MiB "
        f"| {p50_idle:.1f} ms | {p50:.1f} ms (max {worst:.0f}) | {note} |"
    )


async def sync_user_latency(server: Server) -> str:
    """A sync ``div`` of an anonymous client of the sleepers' IP, of another IP, and of a
    logged-in user while 16 anonymous sockets of 127.0.0.1 sleep."""
    sleepers = [await connect(server.url) for _ in range(16)]
    for ws in sleepers:
        await ws.send(json.dumps({"sleep": {"seconds": 4}}))
    await asyncio.sleep(0.5)
    results = []
    clients = (
        ("anonymous, same IP", None, None),
        ("anonymous, another IP", None, ("127.0.0.2", 0)),
        ("logged-in", {"Cookie": _login(server)}, None),
    )
    for who, headers, local_addr in clients:
        async with connect(server.url, additional_headers=headers, local_addr=local_addr) as ws:
            started = time.perf_counter()
            await ws.send(json.dumps({"div": {"a": 1, "b": 2}, "request_id": 1}))
            await ws.recv()
            results.append(f"{who} div {1000 * (time.perf_counter() - started):.0f} ms")
    for ws in sleepers:
        await ws.close()
    return ", ".join(results)


def _login(server: Server) -> str:
    script = (
        "from django.contrib.sessions.backends.db import SessionStore;"
        "from django.contrib.auth.models import User;"
        "u = User.objects.get(username='bench'); s = SessionStore();"
        "s['_auth_user_id'] = str(u.pk);"
        "s['_auth_user_backend'] = 'django.contrib.auth.backends.ModelBackend';"
        "s['_auth_user_hash'] = u.get_session_auth_hash(); s.create(); print(s.session_key)"
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=server.env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return f"sessionid={out.strip().splitlines()[-1]}"


def set_after(seconds: float) -> asyncio.Event:
    """An event set after ``seconds`` (the end of an idle measurement)."""
    event = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, event.set)
    return event


def parse_costs() -> str:
    """Event-loop time to decode 256 KB frames (``jsoncodec.decode`` with the default depth
    limit, as the consumer calls it), against orjson's own parse of the same text."""
    frames = {
        "digits": '{"echo": {"text": ' + "7" * 250_000 + "}}",
        "brackets": '{"echo": {"text": ' + "[" * 125_000 + "]" * 125_000 + "}}",
        "a string": '{"echo": {"text": "' + "a" * 250_000 + '"}}',
        "10,000 commands": json.dumps({f"c{i}": {"a": 1} for i in range(10_000)}),
        "30,000 small lists": json.dumps({"echo": {"text": [[1]] * 30_000}}),
    }
    rows = ["| frame | orjson.loads | jsoncodec.decode |", "|---|---|---|"]
    for name, text in frames.items():
        rows.append(
            f"| {name} ({len(text) // 1000} KB) | {_best(orjson.loads, text):.2f} ms "
            f"| {_best(lambda t: decode(t, 32), text):.2f} ms |"
        )
    return "\n".join(rows)


def _best(func: Callable[[str], object], text: str, rounds: int = 20) -> float:
    """The fastest of ``rounds`` calls, in ms (the least disturbed by other processes)."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        with contextlib.suppress(ValueError):
            func(text)
        best = min(best, time.perf_counter() - started)
    return best * 1000


async def main_async(selected: list[str]) -> None:
    if selected == ["parse"]:
        print(parse_costs())
        return
    with tempfile.TemporaryDirectory(prefix="wscommands-attacks-") as workdir:
        server = start_daphne(Path(workdir))
        try:
            print("| attack | RSS before / peak / 2 s after | echo p50 idle | during | server |")
            print("|---|---|---|---|---|")
            for name in ATTACKS:
                if selected and not any(s in name for s in selected):
                    continue
                print(await run_one(server, name), flush=True)
            if not selected or any("sync" in s for s in selected):
                print(f"\nSync div while 16 sockets sleep: {await sync_user_latency(server)}")
            if not selected:
                print(f"\n{parse_costs()}")
        finally:
            server.stop()


def main() -> None:
    """Run the attacks (all, or those whose name contains one of the arguments)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attacker", nargs=2, metavar=("NAME", "URL"), help=argparse.SUPPRESS)
    parser.add_argument(
        "only",
        nargs="*",
        help='run only attacks whose name contains this ("parse": only the parse costs)',
    )
    args = parser.parse_args()
    if args.attacker:  # one attack, in the process run_attacker started
        name, url = args.attacker
        print(asyncio.run(ATTACKS[name](url)))
        return
    asyncio.run(main_async(args.only))


if __name__ == "__main__":
    main()
