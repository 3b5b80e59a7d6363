"""Real server processes for end-to-end tests: daphne, uvicorn or the engine
(``manage.py wscommands_engine``, WebSockets only) running the example project."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
#: Every server that serves the WebSocket endpoint (``Server(kind=...)``): the protocol,
#: resume and reliability suites run against each.
SERVERS = ("daphne", "uvicorn", "engine")
#: Two processes of one cluster, ``(the one a test stops or kills, the other)``: two daphnes,
#: two engines, and an engine beside daphne (one cluster, docs/scaling.md "The engine").
PAIRS = (("daphne", "daphne"), ("engine", "engine"), ("engine", "daphne"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"server did not listen on {port} within {timeout}s")


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run ``manage.py`` with exactly ``env``; the finished process, whatever its exit code."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def manage(*args: str, env: dict[str, str]) -> str:
    """Run ``manage.py`` with the given environment; returns stdout."""
    result = run_manage(*args, env=env)
    if result.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def create_user(env: dict[str, str], username: str, password: str, staff: bool = False) -> None:
    """A user (``is_staff`` as ``staff``) in the database of ``env``, unless there is one."""
    manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User\n"
        f"User.objects.filter(username={username!r}).exists() or "
        f"User.objects.create_user({username!r}, password={password!r}, is_staff={staff!r})",
        env=env,
    )


class Server:
    """A server process on a free port; ``ws`` is its socket's URL, ``http`` its http:// base.

    ``kind``: ``"daphne"``, ``"uvicorn"`` or ``"engine"`` (serves ``/ws/`` only, no HTTP;
    ``args`` are its command's options, e.g. ``("--forwarded-allow-ips", "*")``).
    """

    def __init__(
        self,
        env: dict[str, str],
        kind: str = "daphne",
        port: int | None = None,
        args: tuple[str, ...] = (),
        application: str = "project.asgi:application",
    ):
        self.env = env
        self.kind = kind
        self.args = args  # extra server options, e.g. ("--proxy-headers",)
        self.application = application
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = ROOT / "test-artifacts" / f"{kind}-{self.port}.log"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        self.log_path.parent.mkdir(exist_ok=True)
        if self.kind == "engine":
            cmd = [sys.executable, "manage.py", "wscommands_engine"]
            cmd += ["--host", "127.0.0.1", "--port", str(self.port), *self.args]
        else:
            if self.kind == "daphne":
                cmd = [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(self.port)]
            else:
                cmd = [str(BIN / "uvicorn"), "--host", "127.0.0.1", "--port", str(self.port)]
            cmd += [*self.args, self.application]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            cmd, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )
        wait_for_port(self.port, self.process)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        code, self.process = self.process.returncode, None
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class RedisServer:
    """A ``redis-server`` of a test's own on a free port, without persistence.

    Fault tests stop, restart and freeze it; the machine's shared Redis, which other test
    runs use, is never touched.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start it (again, on the same port: empty, since nothing is saved)."""
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, self.process)
        return self

    def cli(self, *args: str) -> str:
        """Run redis-cli against it; its output, stripped."""
        result = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, timeout=10
        )
        return result.stdout.strip()

    def ping(self) -> bool:
        return self.cli("ping") == "PONG"

    def clients(self) -> int:
        """Connected clients, not counting the redis-cli asking."""
        return int(self.cli("info", "clients").split("connected_clients:")[1].split()[0]) - 1

    def stop(self) -> None:
        """Kill it (its data is gone: nothing is saved)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)  # a frozen one must be able to die
            self.process.kill()
            self.process.wait()
            self.process = None

    def pause(self) -> None:
        """Freeze it: connections stay open but nothing is answered (a stall)."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)
