"""The operations page's data: each process publishes its figures, staff read them all.

Every process with connections writes one small JSON document to the backend every
``WSCOMMANDS["OPS_INTERVAL"]`` seconds (its connections, its busiest users and groups, and
the cumulative counts of :data:`.metrics.totals`); the backend keeps it only while the
process's presence heartbeat is alive and for three intervals after the last write. Reading
costs one backend call and one document per process, whatever the number of connections:
the page polls :func:`snapshot`, nothing is pushed per socket. Rates (commands per second,
errors per second) are differences between two snapshots, computed by the page.
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
    groups = heapq.nlargest(TOP, hub.groups.items(), key=lambda item: len(item[1]))
    return {
        "process": process,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "at": time.time(),
        "connections": len(connections),
        "anonymous": len(connections) - signed_in,
        "users": users,
        "user_count": len(hub.users),
        "groups": [{"group": name, "members": len(ids)} for name, ids in groups],
        "group_count": len(hub.groups),
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
            await presence_store().stats_write(process, interval * 3, encode(figures(hub, process)))
        except BackendUnavailable as exc:
            logger.debug("operations figures not written (%s)", exc)
        except Exception:  # a bug of ours: logged once; the process drops off the page
            if not reported:
                logger.exception("operations figures failed")
                reported = True
        await asyncio.sleep(interval)


def _merge_top(rows: list[dict[str, Any]], key: str, count: str) -> list[dict[str, Any]]:
    merged: dict[Any, dict[str, Any]] = {}
    for row in rows:
        entry = merged.setdefault(row[key], {**row, count: 0})
        entry[count] += row[count]
    return heapq.nlargest(TOP, merged.values(), key=lambda entry: entry[count])


async def snapshot() -> dict[str, Any]:
    """Every live process's figures, and their sums (users and groups merged across them).

    Raises BackendUnavailable when the backend cannot be reached.
    """
    processes = sorted(
        (decode(text) for text in await presence_store().stats_read()),
        key=lambda figures: figures["process"],
    )
    names = ("commands", "errors", "frames_in", "frames_out", "refused", "deliveries")
    totals = {name: sum(p["totals"][name] for p in processes) for name in names}
    totals["delivery_lag"] = sum(p["totals"]["delivery_lag"] for p in processes)
    return {
        "at": time.time(),
        "processes": processes,
        "connections": sum(p["connections"] for p in processes),
        "anonymous": sum(p["anonymous"] for p in processes),
        "users": _merge_top([u for p in processes for u in p["users"]], "user_id", "connections"),
        "groups": _merge_top([g for p in processes for g in p["groups"]], "group", "members"),
        "totals": totals,
    }
