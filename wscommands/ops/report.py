"""The operations page's data: each process publishes its figures, staff read them all.

Every process with connections writes one small JSON document to the backend every
``WSCOMMANDS["OPS_INTERVAL"]`` seconds (its connections, its busiest users and groups, and
the cumulative counts of :data:`.metrics.totals`); the backend keeps it only while the
process's presence heartbeat is alive. Reading costs one backend call and one document per
process, whatever the number of connections: the page polls :func:`snapshot`, nothing is
pushed per socket. Rates (commands per second, errors per second) and latency percentiles
are differences between two snapshots, computed by the page.

A process that stops writing (killed, frozen, cut off from Redis) is listed as ``lost`` with
its last figures until its heartbeat expires and a live process reaps its presence: then
it is gone. Its figures outlive its heartbeat for that (see :func:`run`).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import os
import socket
import time
from typing import Any, Protocol

from ..backends import BackendUnavailable, presence_store
from ..conf import wscommands_settings
from ..delivery.peer import Peer
from ..observability import metrics
from ..observability.figures import LATENCY_BUCKETS
from ..wire.jsoncodec import decode, encode


class ProcessState(Protocol):
    """What the figures read of a process's hub: its connections, users and groups."""

    connections: dict[str, Peer]
    #: user primary key -> ids of the user's local connections.
    users: dict[Any, set[str]]
    #: group -> ids of its local members.
    groups: dict[str, set[str]]


logger = logging.getLogger("wscommands.layer")

#: Users and groups listed per process (the largest), and in the merged snapshot.
TOP = 20
#: Groups of the library's own (presence diffs), not the application's: not listed.
INTERNAL_GROUP_PREFIX = "wscommands."
#: Intervals without a write after which a process is shown as lost.
LOST_AFTER = 3
#: When this process started (this module is imported at Django's setup): its uptime.
STARTED = time.time()


def figures(hub: ProcessState, process: str) -> dict[str, Any]:
    """This process's figures: O(users + groups) to compute, a few KiB to store."""
    connections = hub.connections
    users = []
    for pk, ids in heapq.nlargest(TOP, hub.users.items(), key=lambda item: len(item[1])):
        holder = next((connections[i] for i in ids if i in connections), None)
        user = holder.user if holder is not None else None
        name = user.get_username() if user is not None else str(pk)
        users.append({"user_id": pk, "username": name, "connections": len(ids)})
    signed_in = sum(len(ids) for ids in hub.users.values())
    mine = [(name, ids) for name, ids in hub.groups.items() if not _internal(name)]
    groups = heapq.nlargest(TOP, mine, key=lambda item: len(item[1]))
    return {
        "process": process,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": STARTED,
        "at": time.time(),
        "connections": len(connections),
        "anonymous": len(connections) - signed_in,
        "users": users,
        "user_count": len(hub.users),
        "groups": [{"group": name, "members": len(ids)} for name, ids in groups],
        "group_count": len(mine),
        "totals": metrics.totals.as_dict(),
    }


async def run(hub: ProcessState, process: str) -> None:
    """Publish this process's figures every OPS_INTERVAL seconds (the hub runs it)."""
    reported = False
    while True:
        interval = wscommands_settings.OPS_INTERVAL
        if interval is None:
            return
        try:
            # Kept past the heartbeat (PRESENCE_TTL), so a killed process shows as lost until
            # it is reaped; stopped, the hub deletes them with its presence.
            ttl = wscommands_settings.PRESENCE_TTL + interval * LOST_AFTER
            await presence_store().stats_write(process, ttl, encode(figures(hub, process)))
        except BackendUnavailable as exc:
            logger.debug("operations figures not written (%s)", exc)
        except Exception:  # a bug of ours: logged once; the process drops off the page
            if not reported:
                logger.exception("operations figures failed")
                reported = True
        await asyncio.sleep(interval)


_NO_BUCKETS = (0,) * (len(LATENCY_BUCKETS) + 1)


def _internal(group: str) -> bool:
    return group.startswith(INTERNAL_GROUP_PREFIX)


def _merge_top(rows: list[dict[str, Any]], key: str, count: str) -> list[dict[str, Any]]:
    merged: dict[Any, dict[str, Any]] = {}
    for row in rows:
        entry = merged.setdefault(row[key], {**row, count: 0})
        entry[count] += row[count]
    return heapq.nlargest(TOP, merged.values(), key=lambda entry: entry[count])


async def snapshot() -> dict[str, Any]:
    """Every process's figures, and the sums of the live ones (users and groups merged).

    Each process has ``lost``: true when it has not written for :data:`LOST_AFTER` intervals
    (its connections then count nowhere; its cumulative totals still do, until it is reaped).
    Raises BackendUnavailable when the backend cannot be reached.
    """
    now = time.time()
    stale = LOST_AFTER * (wscommands_settings.OPS_INTERVAL or 1.0)
    processes = sorted(
        (decode(text) for text in await presence_store().stats_read()),
        key=lambda figures: (figures.get("host", ""), figures.get("pid", 0), figures["process"]),
    )
    for p in processes:
        p["lost"] = now - p["at"] > stale
        # Figures from a process that predates these fields (a rolling upgrade).
        p.setdefault("started", None)
        p["groups"] = [g for g in p["groups"] if not _internal(g["group"])]
    live = [p for p in processes if not p["lost"]]
    names = ("commands", "errors", "frames_in", "frames_out", "refused", "deliveries")
    totals: dict[str, Any] = {name: sum(p["totals"][name] for p in processes) for name in names}
    totals["delivery_lag"] = sum(p["totals"]["delivery_lag"] for p in processes)
    totals["lag_buckets"] = [
        sum(counts)
        for counts in zip(
            *(p["totals"].get("lag_buckets") or _NO_BUCKETS for p in processes), strict=True
        )
    ] or list(_NO_BUCKETS)
    return {
        "at": now,
        "processes": processes,
        "live": len(live),
        "lost": len(processes) - len(live),
        "connections": sum(p["connections"] for p in live),
        "anonymous": sum(p["anonymous"] for p in live),
        "users": _merge_top([u for p in live for u in p["users"]], "user_id", "connections"),
        "groups": _merge_top([g for p in live for g in p["groups"]], "group", "members"),
        "totals": totals,
        # The upper bounds (seconds) of lag_buckets, +Inf last (not written).
        "lag_bounds": list(LATENCY_BUCKETS),
    }
