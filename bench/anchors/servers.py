"""The anchors' server processes: python-socketio under uvicorn and Node.js Socket.IO 4.

Started, pinned and measured (CPU, RSS from /proc) like the wscommands servers: the same
:class:`bench.servers.Server`, with another command line and the Socket.IO URL, which
:func:`bench.client.listener_for` recognises to speak Socket.IO.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..servers import BIN, ROOT, Server

#: Result keys of the anchors, as the scenarios' app names.
PYTHON, NODE = "python-socketio", "node-socketio"
NODE_DIR = ROOT / "bench" / "anchors" / "node"
#: The environment variables bench/anchors/socketio_app.py reads.
REDIS_VAR, CHANNEL_VAR = "BENCH_SOCKETIO_REDIS", "BENCH_SOCKETIO_CHANNEL"


@dataclass
class AnchorServer(Server):
    """A Socket.IO server: ``kind`` "uvicorn" (python-socketio) or "node" (Node.js)."""

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/socket.io/?EIO=4&transport=websocket"

    def command(self) -> list[str]:
        if self.kind == "node":
            return [shutil.which("node") or "node", str(NODE_DIR / "server.js"), str(self.port)]
        # As the wscommands servers under uvicorn (bench/servers.py), another app.
        return [
            *(str(BIN / "uvicorn"), "--host", "127.0.0.1", "--port", str(self.port)),
            *("--no-access-log", "--log-level", "warning", "--backlog", "2048"),
            "bench.anchors.socketio_app:app",
        ]


def missing() -> dict[str, str]:
    """The anchors that cannot run here, each with what to install (empty: both can)."""
    why = {}
    if importlib.util.find_spec("socketio") is None:
        why[PYTHON] = "python-socketio is not installed: pip install -r bench/requirements.txt"
    if shutil.which("node") is None:
        why[NODE] = "node is not installed: apt-get install nodejs npm, then make bench"
    elif not (NODE_DIR / "node_modules" / "socket.io").is_dir():
        why[NODE] = "socket.io is not installed: npm ci --prefix bench/anchors/node (make bench)"
    return why


def versions() -> dict[str, str]:
    """The anchors' versions, for the report (``?`` when not installed)."""
    found = {name: "?" for name in ("python-socketio", "python-engineio", "node", "socket.io")}
    for name in ("python-socketio", "python-engineio"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    node = shutil.which("node")
    if node:
        found["node"] = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
    package = NODE_DIR / "node_modules" / "socket.io" / "package.json"
    if package.exists():
        found["socket.io"] = json.loads(package.read_text())["version"]
    return found


def echo_servers(env: dict[str, str], cores: set[int], log_dir: Path) -> dict[str, Server]:
    """One server per anchor that can run, on ``cores`` (the echo scenario's)."""
    kinds = {PYTHON: "uvicorn", NODE: "node"}
    return {
        app: AnchorServer(app, kind, env, cores, log_dir)
        for app, kind in kinds.items()
        if app not in missing()
    }


def broadcast_servers(
    env: dict[str, str], redis_url: str, log_dir: Path
) -> dict[str, list[Server]]:
    """The broadcast scenario's anchors: two python-socketio processes sharing Redis, one per
    core (as wscommands' pair), and Node.js Socket.IO as one process (its reference setup)."""
    servers: dict[str, list[Server]] = {}
    absent = missing()
    if PYTHON not in absent:
        # A channel of this run's own: pub/sub channels ignore the database number.
        shared = {**env, REDIS_VAR: redis_url, CHANNEL_VAR: f"bench-socketio-{os.getpid()}"}
        servers[PYTHON] = [AnchorServer(PYTHON, "uvicorn", shared, {i}, log_dir) for i in (0, 1)]
    if NODE not in absent:
        servers[NODE] = [AnchorServer(NODE, "node", env, {0}, log_dir)]
    return servers
