"""Server processes for the benchmark: daphne, uvicorn or the engine, pinned to a core,
measured via /proc."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

#: The ASGI applications compared: the example project and the bare-consumer baseline.
APPS = {"wscommands": "project.asgi:application", "baseline": "bench.baseline_asgi:application"}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_fd_limit() -> None:
    """Lift this process's open-file limit to the hard limit (thousands of sockets)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def pin(cores: set[int] | None) -> None:
    """Pin this process to ``cores`` (None: leave it where it is)."""
    if cores is not None and hasattr(os, "sched_setaffinity"):
        available = set(range(os.cpu_count() or 1))
        os.sched_setaffinity(0, cores & available or available)


def server_env(db_path: Path, redis_url: str | None) -> dict[str, str]:
    """The environment of a server: its SQLite file and, for the cluster runs, Redis."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DATABASE_URL=f"sqlite:///{db_path}",
        PYTHONUNBUFFERED="1",
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def migrate(db_path: Path) -> None:
    """Create the servers' SQLite database (sessions, users) once."""
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=server_env(db_path, None),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode:
        raise RuntimeError(f"manage.py migrate failed:\n{result.stderr[-3000:]}")


@dataclass
class Server:
    """One server process serving ``app`` ("wscommands" or "baseline") with ``kind``."""

    app: str
    kind: str  # "daphne", "uvicorn" or "engine" (manage.py wscommands_engine, app "wscommands")
    env: dict[str, str]
    cores: set[int] | None = None
    log_dir: Path = ROOT / "bench" / "results"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    #: The source tree served (another commit's, for bench.compare).
    root: Path = ROOT

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def command(self) -> list[str]:
        if self.kind == "engine":
            return [sys.executable, "manage.py", "wscommands_engine", "--port", str(self.port)]
        if self.kind == "daphne":
            # -v 0: no access log line per connection; a listen backlog for the bursts.
            endpoint = f"tcp:port={self.port}:interface=127.0.0.1:backlog=2048"
            return [str(BIN / "daphne"), "-v", "0", "-e", endpoint, APPS[self.app]]
        return [
            str(BIN / "uvicorn"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--backlog",
            "2048",
            APPS[self.app],
        ]

    def spawn(self) -> Server:
        """Start the process (without waiting: see :meth:`wait_ready`)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_dir / f"{self.app}-{self.kind}-{self.port}.log", "wb")  # noqa: SIM115
        cores = self.cores

        def setup() -> None:
            raise_fd_limit()
            pin(cores)

        self.process = subprocess.Popen(
            self.command(),
            cwd=self.root,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=setup,
        )
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        """Return once the server accepts TCP connections; raise if it died or is too slow."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.app} on {self.kind} exited: see {self._log.name}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"{self.app} on {self.kind} did not listen within {timeout}s")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        self.process = None

    def rss_bytes(self) -> int:
        """Resident memory of the server process now."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS in /proc status")

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_all(servers: list[Server]) -> list[Server]:
    """Spawn every server, then wait for all of them (they start in parallel)."""
    for server in servers:
        server.spawn()
    try:
        for server in servers:
            server.wait_ready()
    except Exception:
        stop_all(servers)
        raise
    return servers


def stop_all(servers: list[Server]) -> None:
    for server in servers:
        server.stop()


@contextlib.contextmanager
def private_redis() -> Iterator[str | None]:
    """A ``redis-server`` of the benchmark's own on a free port, its URL (None: not installed).

    Redis commands per broadcast are read from server-wide counters: on a Redis others use
    (test runs, other benchmarks), their traffic would be counted too.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the benchmark's redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.kill()
        process.wait()
