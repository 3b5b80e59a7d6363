"""The delivery checker's clients: each behaves as docs/protocol.md tells a client to.

A resumable client keeps, per stream, the position up to which it has every push (from the
announcements, the pushes, the resume replies), holds pushes that come early, asks
``wscommands.resume`` when an offset jumps or the epoch changes (a gap fill), and after a
reconnect resumes from the positions it has. A plain client re-joins its groups after a
reconnect. Both act at random: join, leave, reconnect (to either process), and a resumable
one sometimes asks again for what its connection was already sent.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from typing import Any

from tests.reliability.delivery_harness import POSITION, RESUME, STREAMS, Cluster, Index, Link, pair


class Client:
    """One user agent; its connections are ``<name>.1``, ``<name>.2``, ..."""

    def __init__(self, name: str, cluster: Cluster, index: Index, rng: random.Random, **kind):
        self.name, self.cluster, self.index, self.rng = name, cluster, index, rng
        self.history = index.history
        self.resumable: bool = kind["resumable"]
        self.user: Any = kind.get("user")  # pk, or None for anonymous
        self.session: str | None = kind.get("session")
        self.groups: set[str] = set()
        self.pos: dict[str, list] = {}  # stream -> [epoch, offset] it has everything up to
        self.ahead: dict[str, set[tuple[str, int]]] = defaultdict(set)
        self.resuming: set[str] = set()
        self.leaving: set[str] = set()  # no gap fill names a group being left
        self.first: dict[str, int] = {}  # stream -> first offset known on this connection
        self.link: Link | None = None
        self.count = 0
        self.tasks: set[asyncio.Task] = set()

    # -- connections --------------------------------------------------------------------
    async def connect(self) -> bool:
        """A new connection to a random process; resume (or re-join) what it had."""
        process = self.rng.randrange(len(self.cluster.servers))
        url = self.cluster.servers[process].ws + ("?resume=1" if self.resumable else "")
        streams = {s: list(p) for s, p in self.pos.items()} if self.resumable else {}
        self.resuming, self.first = set(streams), {}
        self.ahead.clear()
        self.count += 1
        name = f"{self.name}.{self.count}"
        try:
            self.link = await Link.open(
                url,
                name,
                self.index,
                self.on_frame,
                self.session,
                client=self.name,
                resumable=self.resumable,
                user=self.user,
                process=process,
            )
        except Exception:  # that process is down: another try at the next step
            self.link, self.resuming = None, set()
            return False
        if streams:
            await self.resume(streams)
        elif not self.resumable:
            groups, self.groups = sorted(self.groups), set()
            for group in groups:
                await self.join(group)
        return True

    async def close(self) -> None:
        if self.link is not None and self.link.open_:
            await self.link.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    # -- what arrives -------------------------------------------------------------------
    def on_frame(self, link: Link, message: dict[str, Any]) -> None:
        if link is not self.link or not self.resumable:
            return
        if STREAMS in message:
            for stream, position in message[STREAMS].items():
                if position is None:
                    self.pos.pop(stream, None)
                elif stream not in self.resuming:
                    self.pos[stream] = pair(position)
                    self.first.setdefault(stream, position["offset"])
        elif POSITION in message:
            p = message[POSITION]
            self.received(p["stream"], p["epoch"], p["offset"])

    def received(self, stream: str, epoch: str, offset: int) -> None:
        have = self.pos.get(stream)
        if have is None and stream not in self.resuming:
            self.pos[stream] = [epoch, offset]  # no announcement: the first push is the start
            self.first.setdefault(stream, offset)
        elif have is not None and have[0] == epoch and offset == have[1] + 1:
            have[1] = offset
            self.advance(stream)
        elif have is None or have[0] != epoch or offset > have[1] + 1:
            self.ahead[stream].add((epoch, offset))
            if stream not in self.resuming | self.leaving and have is not None:
                self.fill({stream: list(have)})

    def advance(self, stream: str) -> None:
        """Let held pushes out in offset order."""
        have = self.pos[stream]
        while (have[0], have[1] + 1) in self.ahead[stream]:
            have[1] += 1
        self.ahead[stream] = {(e, o) for e, o in self.ahead[stream] if e == have[0] and o > have[1]}

    # -- requests -----------------------------------------------------------------------
    def fill(self, streams: dict[str, list]) -> None:
        """Ask for what is missing, in the background (a push handler cannot wait)."""
        self.resuming |= set(streams)
        task = asyncio.create_task(self.resume(streams))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def resume(self, streams: dict[str, list], tries: int = 20) -> None:
        """Resume ``streams`` on the current connection; asked again while unavailable."""
        link = self.link
        for _ in range(tries):
            try:
                reply = await self.ask(link, streams)
            except Exception:
                break  # the connection is gone: the next one resumes
            if RESUME in reply:
                return
            await asyncio.sleep(0.3)  # unavailable during a fault: ask again
        self.resuming -= set(streams)

    async def ask(self, link: Link, streams: dict[str, list]) -> dict:
        """One ``wscommands.resume`` request, recorded with its reply."""
        rid: list[int] = []

        def sent(request_id: int) -> None:
            rid.append(request_id)
            self.history.add("resume", link.name, rid=request_id, streams=streams)

        def record(reply: dict) -> None:
            error = reply.get("errors", {}).get(RESUME, {}).get("code")
            result = reply.get(RESUME)
            self.history.add("resumed", link.name, rid=rid[0], result=result, error=error)
            if link is self.link and result is not None:
                self.resumed(link, streams, result)

        wire = {s: {"epoch": e, "offset": o} for s, (e, o) in streams.items()}
        return await link.request({RESUME: {"streams": wire}}, record, sent)

    def resumed(self, link: Link, streams: dict, result: dict[str, Any]) -> None:
        for stream in streams:
            self.resuming.discard(stream)
            entry = result.get(stream) or {}
            if "epoch" not in entry:  # forbidden, or unknown: this client loses the stream
                self.pos.pop(stream, None)
                self.groups.discard(stream.partition(":")[2])
                continue
            if stream.startswith("group:"):
                link.since.setdefault(stream, self.history.now - 1)
            now = [entry["epoch"], entry["offset"]]
            have = self.pos.get(stream)
            if not entry.get("recovered"):
                self.pos[stream] = now
                self.first[stream] = now[1]  # a new start: nothing before it on this link
            elif have is None or have[0] != now[0] or have[1] < now[1]:
                self.pos[stream] = now
            self.first.setdefault(stream, now[1])
            self.advance(stream)

    async def join(self, group: str) -> None:
        link, stream = self.link, f"group:{group}"

        def record(reply: dict) -> None:
            ok = "errors" not in reply
            event = self.history.add("joined", link.name, group=group, ok=ok)
            if ok:
                link.since[stream] = event.t

        self.history.add("join", link.name, group=group)
        reply = await link.request({"op.join": {"group": group}}, record)
        if "errors" not in reply:
            self.groups.add(group)

    async def leave(self, group: str) -> None:
        """Leave (not while a resume names the group: it could restore it afterwards)."""
        link, stream = self.link, f"group:{group}"
        if stream in self.resuming:
            return
        self.leaving.add(stream)
        until = self.history.add("leave", link.name, group=group).t
        try:
            await link.drain([stream], until)
            link.since.pop(stream, None)

            def record(reply: dict) -> None:
                self.history.add("left", link.name, group=group, ok="errors" not in reply)

            await link.request({"op.leave": {"group": group}}, record)
        finally:
            self.leaving.discard(stream)
        self.groups.discard(group)
        self.pos.pop(stream, None)

    async def again(self) -> None:
        """Resume a stream from a position this connection was already sent."""
        ready = [s for s in self.pos if s not in self.resuming and s in self.first]
        if not ready:
            return
        stream = self.rng.choice(sorted(ready))
        epoch, offset = self.pos[stream]
        older = self.rng.randint(min(self.first[stream], offset), offset)
        self.resuming.add(stream)
        await self.resume({stream: [epoch, older]})

    # -- behaviour ----------------------------------------------------------------------
    async def act(self, steps: int, groups: list[str]) -> None:
        """``steps`` random actions with short random pauses (to interleave, not to wait)."""
        for _ in range(steps):
            await asyncio.sleep(self.rng.uniform(0, 0.15))
            if self.link is None or not self.link.open_:
                await self.connect()
                continue
            action = self.rng.choices(
                ("join", "leave", "reconnect", "again", "idle"), (3, 2, 2, 1 + self.resumable, 4)
            )[0]
            try:
                others = [g for g in groups if g not in self.groups]
                if action == "join" and others and len(self.groups) < 3:
                    await self.join(self.rng.choice(others))
                elif action == "leave" and self.groups:
                    await self.leave(self.rng.choice(sorted(self.groups)))
                elif action == "reconnect":
                    await self.link.close()
                    await self.connect()
                elif action == "again" and self.resumable:
                    await self.again()
            except (ConnectionError, TimeoutError):
                continue  # the connection went (a fault): the next step reconnects
