"""Follow a README section's blocks as a new user would, in a fresh shell and a directory.

Blocks, in order:
- a block whose first line names a file (``# mysite/asgi.py``) is that file, written whole,
  or appended with ``, at the end``;
- a ``$ ... websockets ws://...`` session: each ``>`` line is sent and the next reply must be
  the ``<`` line (as JSON), against the server started last; a server started after a
  session is talked to with that session again;
- any other ``sh`` block runs line by line in bash, with these substitutions, none of which
  changes what the line does for a user:
  - servers (``dev.py run``, ``manage.py runserver``, ``daphne``) serve on a free port, not
    8000 (several test runs share a machine), in the background, until the section ends;
  - ``python3 dev.py CMD`` skips dev.py's set-up step (virtualenv and npm sync): the test
    already runs in that environment;
  - ``python3 dev.py test`` is not run: it is what runs this test;
  - ``pip install`` checks that the packages are installed rather than installing them;
  - an interactive ``createsuperuser`` gets ``--noinput`` and its answers from the environment.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO

import pytest
from websockets.sync.client import connect

from tests.docblocks import Block
from tests.live import free_port, wait_for_port

VENV_BIN = Path(sys.executable).parent
DEV_CALL = "import dev, sys; dev.{}(sys.argv[1:])"


def fresh_env(**extra: str) -> dict[str, str]:
    """A new user's shell: no test-run settings, the virtualenv's commands first on PATH."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "WSCOMMANDS_", "PYTEST_"))
        and name not in ("REDIS_URL", "DATABASE_URL", "PYTHONPATH")
    }
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def commands(block: Block) -> list[str]:
    """The block's commands: continuation lines joined, comments and blank lines dropped."""
    joined = block.text.replace("\\\n", " ")
    lines = [shlex.split(line, comments=True) for line in joined.splitlines()]
    return [shlex.join(words) for words in lines if words]


class Walk:
    """One README section followed in ``cwd``: files written, commands run, servers talked to."""

    def __init__(self, cwd: Path, env: dict[str, str]):
        self.cwd, self.env = cwd, env
        self.server: subprocess.Popen | None = None
        self.port = 0
        self.session: Block | None = None
        self.log: list[str] = []
        self.server_log: IO[str] | None = None

    def follow(self, blocks: list[Block]) -> None:
        try:
            for block in blocks:
                self.block(block)
        finally:
            self.stop()

    def block(self, block: Block) -> None:
        if block.file_name:
            self.write(block)
        elif block.first_line.startswith("$ "):
            self.session = block
            self.talk(block)
        elif block.lang == "sh":
            for command in commands(block):
                self.run(command, block)
        else:
            pytest.fail(f"{block.where}: no way to follow a {block.lang!r} block here")

    def write(self, block: Block) -> None:
        path = self.cwd / block.file_name
        body = block.text.split("\n", 1)[1]  # the naming comment is not part of the file
        path.parent.mkdir(parents=True, exist_ok=True)
        if "at the end" in block.first_line:
            assert path.exists(), f"{block.where}: {block.file_name} should exist by now"
            path.write_text(path.read_text() + "\n" + body)
        else:
            path.write_text(body)

    def run(self, command: str, block: Block) -> None:
        words = shlex.split(command)
        where = f"{block.where}: {command}"
        extra_env: dict[str, str] = {}
        if words[:2] == ["python3", "dev.py"]:
            if words[2] == "test":
                return
            words = [sys.executable, "-c", DEV_CALL.format(words[2]), *words[3:]]
            extra_env["WSCOMMANDS_VENV"] = str(Path(sys.executable).parent.parent)
        if words[:2] == ["pip", "install"]:
            for package in words[2:]:
                module = package.replace("-", "_")
                assert importlib.util.find_spec(module), f"{where}: {package} is not installed"
            return
        if "createsuperuser" in words:
            words += ["--noinput", "--username", "admin", "--email", "admin@example.com"]
            extra_env["DJANGO_SUPERUSER_PASSWORD"] = "a-long-test-password"
        if self.serves(words):
            self.serve(words, extra_env, where)
            return
        result = subprocess.run(
            ["bash", "-c", shlex.join(words)] if words[0] != sys.executable else words,
            cwd=self.cwd,
            env={**self.env, **extra_env},
            capture_output=True,
            text=True,
            timeout=300,
        )
        self.log.append(f"$ {command}\n{result.stdout}{result.stderr}")
        assert result.returncode == 0, f"{where} failed:\n{result.stdout}{result.stderr}"

    @staticmethod
    def serves(words: list[str]) -> bool:
        return (
            "dev.run" in " ".join(words)
            or words[:3] == ["python", "manage.py", "runserver"]
            or words[0] == "daphne"
        )

    def serve(self, words: list[str], extra_env: dict[str, str], where: str) -> None:
        self.stop()
        self.port = free_port()
        if words[0] == "daphne":
            words = [words[0], "-p", str(self.port), *words[1:]]
        elif "runserver" in words:
            words = [*words, f"127.0.0.1:{self.port}"]
        extra_env["PORT"] = str(self.port)
        self.server_log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed by stop)
        self.server = subprocess.Popen(
            words,
            cwd=self.cwd,
            env={**self.env, **extra_env},
            stdout=self.server_log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # runserver's reloader has a child: stop them together
        )
        try:
            wait_for_port(self.port, self.server, timeout=120)
        except Exception:
            self.stop()
            pytest.fail(f"{where} did not serve:\n{self.log[-1]}")
        if self.session is not None:
            self.talk(self.session)

    def talk(self, block: Block) -> None:
        lines = block.text.splitlines()
        url = re.search(r"ws://\S+", lines[0]).group(0)
        assert self.server is not None, f"{block.where}: no server started before it"
        url = re.sub(r":8000/", f":{self.port}/", url)
        with connect(url, open_timeout=30) as socket:
            for line in lines[1:]:
                if line.startswith("> "):
                    socket.send(line[2:])
                elif line.startswith("< "):
                    reply = json.loads(socket.recv(timeout=30))
                    assert reply == json.loads(line[2:]), f"{block.where}: got {reply}"

    def output(self) -> str:
        """What the last server printed (read after it stopped)."""
        if self.server_log is None:
            return ""
        self.server_log.seek(0)
        return self.server_log.read()

    def stop(self) -> None:
        if self.server is None:
            return
        server, self.server = self.server, None
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        self.log.append(self.output())
        if self.server_log is not None:
            self.server_log.close()
            self.server_log = None
