"""The live side of the delivery checker: its own Redis, two daphne processes, and WebSocket
links that record every frame into a :class:`History` as it arrives.

Nothing here judges anything (that is :mod:`.delivery_checker`); :meth:`Link.drain` only
waits until a connection got the pushes the checker will require of it (R1), so that a
connection is never closed, nor a group left, nor a fault injected, while a push it must get
is still on its way.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from tests.live import RedisServer, Server, base_env, manage
from tests.reliability.delivery_history import History, Publish
from tests.scaleout.conftest import http_login

POSITION, STREAMS, RESUME = "wscommands.position", "wscommands.streams", "wscommands.resume"
USERS = ("dc-ann", "dc-bob", "dc-cy")
#: Long enough for a loaded machine; only a push that will never come waits this long.
DRAIN_TIMEOUT = 10.0


def pair(position: dict | None) -> list | None:
    """A wire position ``{"epoch", "offset"}`` as ``[epoch, offset]`` (None stays None)."""
    return None if position is None else [position.get("epoch"), position.get("offset")]


class Cluster:
    """A redis-server of its own (killed, restarted, flushed at will), a migrated SQLite
    database with :data:`USERS`, and two daphne processes of the test settings on them."""

    def __init__(self, history_size: int):
        self.history_size = history_size
        self.dir = Path(tempfile.mkdtemp(prefix="wscommands-delivery-"))
        self.redis = RedisServer()
        self.servers: list[Server] = []
        self.users: dict[str, Any] = {}
        self.sessions: dict[str, str] = {}

    def start(self) -> Cluster:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> Cluster:
        self.redis.start()
        env = base_env(
            DJANGO_SECRET_KEY=f"delivery-{secrets.token_hex(16)}",
            DATABASE_URL=f"sqlite:///{self.dir / 'db.sqlite3'}",
            DJANGO_SETTINGS_MODULE="tests.scaleout.settings",
            REDIS_URL=self.redis.url,
            WSCOMMANDS_PRESENCE_EVENTS="0",
            WSCOMMANDS_LIMITS=json.dumps({"HISTORY_SIZE": self.history_size}),
        )
        manage("migrate", "--noinput", env=env)
        script = (
            "from django.contrib.auth.models import User\n"
            f"for name in {USERS!r}:\n"
            "    print(name, User.objects.create_user(name, password='pw').pk)"
        )
        for line in manage("shell", "-c", script, env=env).split("\n"):
            name, _, pk = line.strip().partition(" ")
            if name in USERS:  # (the shell may print other lines)
                self.users[name] = int(pk)
        self.servers = [Server(env).start(), Server(env).start()]
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        self.redis.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def session(self, username: str) -> str:
        """A signed-in session of ``username`` (one per user: its clients are its tabs)."""
        if username not in self.sessions:
            self.sessions[username] = http_login(self.servers[0], username)
        return self.sessions[username]


class Index:
    """What the publishers sent, by stream, as it happens (the drains read it)."""

    def __init__(self, history: History):
        self.history = history
        self.pubs: dict[str, Publish] = {}
        self.by_stream: dict[str, list[Publish]] = defaultdict(list)
        self.faults: list[list[float]] = []  # [start, end] of each fault

    def begin(self, pid: str, stream: str) -> None:
        pub = Publish(pid, stream, self.history.add("publish", pid=pid, stream=stream).t)
        self.pubs[pid] = pub
        self.by_stream[stream].append(pub)

    def end(self, pid: str, ok: bool, error: Any = None) -> None:
        event = self.history.add("published", pid=pid, ok=ok, error=error)
        self.pubs[pid].end, self.pubs[pid].ok = event.t, ok

    def fault(self, kind: str, what: str) -> int:
        """Record a fault's start (from here R1 no longer counts); its index."""
        t = self.history.add("fault", kind=kind, what=what).t
        self.faults.append([t, float("inf")])
        return t

    def recovered(self, kind: str) -> None:
        self.faults[-1][1] = self.history.add("recovered", kind=kind).t


class Link:
    """One WebSocket connection, recording what arrives; ``on_frame`` lets its client react
    (synchronously, in arrival order)."""

    _ids = itertools.count(1)

    def __init__(self, ws, name: str, index: Index, on_frame: Callable[[Link, dict], None] | None):
        self.ws, self.name, self.index = ws, name, index
        self.record = on_frame is not None  # publishers' links record nothing
        self.history = index.history
        self.on_frame = on_frame
        self.replies: dict[int, tuple[asyncio.Future, Callable[[dict], None] | None]] = {}
        self.since: dict[str, int] = {}  # stream -> receiving from (R1)
        self.got: set[str] = set()
        self.arrived = asyncio.Condition()
        self.reader: asyncio.Task | None = None

    @classmethod
    async def open(
        cls, url: str, name: str, index: Index, on_frame, session: str | None = None, **ready
    ) -> Link:
        headers = {"Cookie": f"sessionid={session}"} if session else None
        ws = await connect(url, additional_headers=headers, open_timeout=10, max_queue=None)
        link = cls(ws, name, index, on_frame)
        if link.record:
            event = link.history.add("ready", name, **ready)
            link.since["all"] = event.t
            if ready.get("user") is not None:
                link.since[f"user:{ready['user']}"] = event.t
        link.reader = asyncio.create_task(link._read())
        return link

    @property
    def open_(self) -> bool:
        return self.reader is not None and not self.reader.done()

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                message = json.loads(text)
                rid = message.get("request_id")
                if rid in self.replies:
                    future, record = self.replies.pop(rid)
                    if record is not None:
                        record(message)
                    if not future.done():
                        future.set_result(message)
                    continue
                if self.record:
                    self._frame(message)
                async with self.arrived:
                    self.arrived.notify_all()
        except Exception:  # a dropped connection ends like a closed one
            pass
        finally:
            if self.record:
                self.history.add("closed", self.name)
            for future, _ in self.replies.values():
                if not future.done():
                    future.set_exception(ConnectionError("closed"))
                    future.exception()  # retrieved: nobody may be waiting any more
            async with self.arrived:
                self.arrived.notify_all()

    def _frame(self, message: dict[str, Any]) -> None:
        if STREAMS in message:
            streams = {s: pair(p) for s, p in message[STREAMS].items()}
            self.history.add("announce", self.name, streams=streams)
        else:
            position = message.get(POSITION) or {}
            pid = message.get("dc")
            pub = self.index.pubs.get(pid) if pid else None
            stream = position.get("stream") or (pub.stream if pub else None)
            if not position and pub is None:
                return  # a plain connection's push from outside the checker
            self.history.add(
                "push",
                self.name,
                stream=stream,
                epoch=position.get("epoch"),
                offset=position.get("offset"),
                pid=pid,
                bare=set(message) == {POSITION} or None,
            )
            if pid:
                self.got.add(pid)
        self.on_frame(self, message)

    async def request(
        self,
        frame: dict,
        record: Callable[[dict], None] | None = None,
        sent: Callable[[int], None] | None = None,
        timeout: float = 20,
    ) -> dict:
        """Send ``frame``; its reply. ``sent(request_id)`` runs just before it goes out,
        ``record(reply)`` as the reply arrives (in order with the pushes)."""
        rid = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self.replies[rid] = (future, record)
        if sent is not None:
            sent(rid)
        await self.ws.send(json.dumps({**frame, "request_id": rid}))
        return await asyncio.wait_for(future, timeout)

    def missing(self, stream: str, until: int) -> set[str]:
        """The pushes R1 requires of this link on ``stream`` for a stop at ``until``."""
        since = self.since.get(stream)
        faults = self.index.faults
        if since is None or any(s <= since <= e or since <= s < until for s, e in faults):
            return set()
        return {
            p.pid
            for p in self.index.by_stream.get(stream, ())
            if p.ok and since < p.start and p.end < until and p.pid not in self.got
        }

    async def drain(self, streams: list[str], until: int) -> None:
        """Wait until every push R1 requires on ``streams`` arrived (or the link closed)."""

        def done() -> bool:
            return not self.open_ or not any(self.missing(s, until) for s in streams)

        try:
            async with asyncio.timeout(DRAIN_TIMEOUT), self.arrived:
                await self.arrived.wait_for(done)
        except TimeoutError:
            pass  # the checker reports what did not come

    async def close(self) -> None:
        """Stop receiving (recorded), drain, close."""
        until = self.history.add("closing", self.name).t
        await self.drain(list(self.since), until)
        await self.ws.close()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)


class Publisher:
    """A plain connection that publishes numbered pushes to ``all``, groups and users."""

    def __init__(self, name: str, cluster: Cluster, process: int, index: Index):
        self.name, self.cluster, self.process, self.index = name, cluster, process, index
        self.link: Link | None = None

    async def publish(self, stream: str) -> None:
        if self.link is None or not self.link.open_:
            url = self.cluster.servers[self.process].ws
            try:
                self.link = await Link.open(url, self.name, self.index, None)
            except Exception:
                await asyncio.sleep(0.2)  # its process is down: a pause before the next try
                return
        pid = self.index.history.new_pid(self.name)
        kind, _, name = stream.partition(":")
        message = {"dc": pid}
        if kind == "all":
            frame = {"op.broadcast": {"message": message}}
        elif kind == "group":
            frame = {"op.group": {"group": name, "message": message}}
        else:
            frame = {"op.subset": {"users": [int(name)], "message": message}}
        self.index.begin(pid, stream)
        try:
            reply = await self.link.request(frame)
        except Exception as exc:  # lost connection or no reply: the push is uncertain
            self.index.end(pid, False, type(exc).__name__)
            return
        errors = reply.get("errors")
        self.index.end(pid, not errors, errors and next(iter(errors.values())).get("code"))
