"""Presence events across two daphne processes: coalesced diffs, and no ghosts after kill -9."""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import time
from typing import Any

import pytest

from tests.live import Server
from tests.scaleout.conftest import PRESENCE_TTL, http_login

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.postgres]

PRESENCE_GROUP = "wscommands.presence"
#: Generous: the reaper acts PRESENCE_TTL after the last heartbeat; the machine is shared.
GONE_WITHIN = float(PRESENCE_TTL) * 3 + 5


class View:
    """A watcher's picture: a presence state, then diffs merged per user.

    The same rules as the browser client's ``Presence``: a user joins when their first
    connection appears and leaves when their last one goes; guests are counted per process.
    """

    def __init__(self, state: dict[str, Any]):
        self.users = {key: set(u["connections"]) for key, u in state["users"].items()}
        self.guests: dict[str, int] = dict(state["guests"])
        self.joined: list[str] = []
        self.left: list[str] = []
        self.diffs = 0

    def apply(self, diff: dict[str, Any]) -> None:
        self.diffs += 1
        for key, user in diff["joins"].items():
            current = self.users.setdefault(key, set())
            if not current:
                self.joined.append(key)
            current.update(user["connections"])
        for key, user in diff["leaves"].items():
            current = self.users.get(key)
            if not current:
                continue
            current.difference_update(user["connections"])
            if not current:
                del self.users[key]
                self.left.append(key)
        self.guests.update(diff["guests"])


async def watch(watcher, view: View, group: str | None, condition, timeout: float) -> None:
    """Apply ``group``'s diffs as they arrive until ``condition(view)`` holds."""
    async with asyncio.timeout(timeout):
        while not condition(view):
            view.apply(await watcher.push("presence_diff", lambda d: d["group"] == group, timeout))


async def test_presence_diffs(cluster, clients):
    """Comings and goings reach watchers as diffs: users listed, guests counted, no one else."""
    a, b = cluster
    watcher = await clients(b.ws)
    bystander = await clients(b.ws)  # never asked for server-wide presence events
    group = f"room-{secrets.token_hex(4)}"
    await watcher.call("op.join", group=group)
    await watcher.call("op.join", group=PRESENCE_GROUP)
    everyone = View(await watcher.call("op.presence_state"))
    room = View(await watcher.call("op.presence_state", group=group))

    guest = await clients(a.ws)
    process = (await guest.call("whoami"))["connection_id"].rpartition("~")[0]
    await watch(watcher, everyone, None, lambda v: v.guests.get(process, 0) >= 1, 15)

    ann = await clients(a.ws, http_login(a, "ann"))
    me = await ann.call("whoami")
    key = str(me["id"])
    await watch(watcher, everyone, None, lambda v: me["connection_id"] in v.users.get(key, ()), 15)
    await ann.call("op.join", group=group)
    await guest.call("op.join", group=group)
    await watch(watcher, room, group, lambda v: key in v.users and v.guests.get(process) == 1, 15)

    await ann.close()
    await guest.close()
    await watch(watcher, room, group, lambda v: key not in v.users and not v.guests[process], 15)
    await watch(watcher, everyone, None, lambda v: key not in v.users, 15)
    assert everyone.joined.count(key) == 1 and everyone.left.count(key) == 1
    # Checkpoint: a broadcast sent after every event above reaches the bystander after them.
    await watcher.call("op.broadcast", message={"checkpoint": 1})
    await bystander.push("checkpoint")
    assert not bystander.received("presence_diff")


async def test_a_burst_of_joins_is_coalesced(cluster, clients):
    """30 anonymous connections joining at once reach a watcher as a few diffs, not 30."""
    a, b = cluster
    group = f"burst-{secrets.token_hex(4)}"
    watcher = await clients(b.ws)
    await watcher.call("op.join", group=group)
    view = View(await watcher.call("op.presence_state", group=group))
    crowd = await asyncio.gather(*(clients(a.ws) for _ in range(30)))
    process = (await crowd[0].call("whoami"))["connection_id"].rpartition("~")[0]
    await asyncio.gather(*(c.call("op.join", group=group) for c in crowd))
    await watch(watcher, view, group, lambda v: v.guests.get(process) == 30, 30)
    print(f"30 joins: {view.diffs} diff(s)")
    assert view.diffs < 30
    assert not view.joined  # anonymous connections are counted, never listed


async def test_killed_process_users_leave_and_a_rejoin_is_one_join(cluster, cluster_env, clients):
    """kill -9 of a process: watchers get its connections' leave within PRESENCE_TTL.

    ann was on the killed process and reconnects to another one before the reaping:
    watchers see her join once (the new connection adds to the ghost) and never leave.
    """
    a, _ = cluster
    group = f"room-{secrets.token_hex(4)}"
    session = http_login(a, "ann")
    doomed = Server(cluster_env).start()
    try:
        watcher = await clients(a.ws)
        await watcher.call("op.join", group=PRESENCE_GROUP)
        await watcher.call("op.join", group=group)
        everyone = View(await watcher.call("op.presence_state"))
        room = View(await watcher.call("op.presence_state", group=group))
        ann = await clients(doomed.ws, session)
        guest = await clients(doomed.ws)
        old = (await ann.call("whoami"))["connection_id"]
        key = str((await ann.call("whoami"))["id"])
        dead = old.rpartition("~")[0]
        for client in (ann, guest):
            await client.call("op.join", group=group)
        await watch(watcher, everyone, None, lambda v: old in v.users.get(key, ()), 15)
        await watch(watcher, room, group, lambda v: key in v.users and v.guests.get(dead), 15)
        already = everyone.joined.count(key)

        doomed.stop(signal.SIGKILL)
        killed = time.monotonic()
        back = await clients(a.ws, session)  # her page reconnects, elsewhere
        new = (await back.call("whoami"))["connection_id"]
        await watch(watcher, everyone, None, lambda v: old not in v.users.get(key, ()), GONE_WITHIN)
        print(f"kill -9: leave pushed after {time.monotonic() - killed:.2f}s (TTL {PRESENCE_TTL}s)")
        await watch(watcher, everyone, None, lambda v: v.guests.get(dead) == 0, GONE_WITHIN)
        await watch(watcher, room, group, lambda v: key not in v.users, GONE_WITHIN)
        await watch(watcher, room, group, lambda v: v.guests.get(dead) == 0, GONE_WITHIN)

        assert everyone.users[key] == {new}
        assert everyone.joined.count(key) == already  # one join: no second "ann joined"
        assert key not in everyone.left
        assert room.left == [key]
        listed = [e["connection_id"] for e in await watcher.call("op.presence")]
        assert old not in listed and new in listed
    finally:
        doomed.stop()


async def test_a_process_killed_between_two_wakes_of_the_reaper_is_reaped(cluster_env, clients):
    """A process that comes up and dies between two wakes of a live reaper: leaves still come.

    The survivor runs a PRESENCE_TTL of 30 s (its heartbeat, and so its reaper, wake
    every 10 s); the doomed process runs a TTL of 1 s. The survivor learns of the doomed one
    only at its next wake, well after the doomed one's heartbeat expired: its entries must
    still be there to be reaped, and their leaves pushed (once they expired with twice the
    dead process's own TTL, and watchers kept the ghost). Processes of a long-running
    deployment are in this state whenever a process comes and goes between their wakes;
    the browser test saw it run after other tests. A prefix of its own: no other process
    of the test session reaps for these two.
    """
    survivor_ttl, doomed_ttl = 30.0, 1.0
    env = {**cluster_env, "WSCOMMANDS_LIMITS": json.dumps({"PREFIX": f"w{secrets.token_hex(3)}"})}
    survivor = Server({**env, "WSCOMMANDS_PRESENCE_TTL": str(survivor_ttl)}).start()
    doomed = Server({**env, "WSCOMMANDS_PRESENCE_TTL": str(doomed_ttl)}).start()
    try:
        session = http_login(survivor, "ann")
        # The survivor's hub starts with this connection: it reaps once now, then wakes
        # PRESENCE_TTL / 3 later (no other process is known to expire sooner).
        watcher = await clients(survivor.ws)
        started = time.monotonic()
        await watcher.call("op.join", group=PRESENCE_GROUP)
        everyone = View(await watcher.call("op.presence_state"))
        ann = await clients(doomed.ws, session)
        me = await ann.call("whoami")
        key, old = str(me["id"]), me["connection_id"]
        await watch(watcher, everyone, None, lambda v: old in v.users.get(key, ()), 15)
        doomed.stop(signal.SIGKILL)
        # The scenario needs the doomed process dead, and its entries' old expiry (twice
        # its TTL) past, before the survivor's next wake.
        took = time.monotonic() - started
        assert took < survivor_ttl / 3 - 2 * doomed_ttl - 1, f"setup took {took:.1f}s: too slow"
        killed = time.monotonic()
        gone_within = doomed_ttl + survivor_ttl / 3 + 5
        await watch(watcher, everyone, None, lambda v: key not in v.users, gone_within)
        print(f"leave pushed {time.monotonic() - killed:.2f}s after the kill")
        assert everyone.left == [key]
        assert "died; 1 connection(s) left" in survivor.log()
    finally:
        doomed.stop()
        survivor.stop()
