#!/usr/bin/env python3
"""Set-up and the two everyday commands, with nothing but python3 on the machine.

    python3 dev.py run     # virtualenv + dependencies + migrations, then daphne on :8000 (DEBUG)
    python3 dev.py test    # virtualenv + dependencies, then lint and the whole test suite

The virtualenv lives in .venv and is re-synced whenever a requirements file changes; the
development Node tools (package.json: tsc, the AsyncAPI JSON Schemas) live in node_modules and
are re-installed with `npm ci` whenever package-lock.json changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("WSCOMMANDS_VENV", ROOT / ".venv"))
BIN = VENV / "bin"
PYTHON = BIN / "python"
REQUIREMENTS = ["requirements.txt", "requirements-dev.txt"]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def sh(*cmd: str | Path, env: dict[str, str] | None = None) -> None:
    """Run a command in the repository, echoing it; exit with its code if it fails."""
    print("+", " ".join(str(c) for c in cmd), flush=True)
    code = subprocess.call([str(c) for c in cmd], cwd=ROOT, env=env)
    if code:
        sys.exit(code)


def install() -> None:
    """Create .venv and install the pinned requirements when they changed."""
    digest = hashlib.sha256(b"".join((ROOT / r).read_bytes() for r in REQUIREMENTS)).hexdigest()
    stamp = VENV / ".requirements.sha256"
    if stamp.exists() and stamp.read_text() == digest and PYTHON.exists():
        return
    if not PYTHON.exists():
        print(f"+ creating virtualenv {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    sh(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    sh(PYTHON, "-m", "pip", "install", "--quiet", "-r", "requirements-dev.txt")
    stamp.write_text(digest)


def install_node() -> None:
    """Install package-lock.json's development tools into node_modules when the lock changed.

    Without npm the tests that need them (tsc, the AsyncAPI schema) skip outside CI; CI
    (.ci/run) installs Node and npm first.
    """
    npm = shutil.which("npm")
    if npm is None:
        if IN_CI:  # CI must run every test: .ci/run installs Node and npm first
            sys.exit("npm is not installed: CI needs it (apt-get install nodejs npm)")
        print("+ npm not found: skipping node_modules (tsc and AsyncAPI tests will skip)")
        return
    digest = hashlib.sha256((ROOT / "package-lock.json").read_bytes()).hexdigest()
    stamp = ROOT / "node_modules" / ".package-lock.sha256"
    if stamp.exists() and stamp.read_text() == digest:
        return
    sh(npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund")
    stamp.write_text(digest)


def run(args: list[str]) -> None:
    """Migrate the database and serve the example project with daphne, in development mode.

    ``DJANGO_DEBUG=1`` unless set: the example then generates a secret key of its own
    (.secret_key) instead of refusing to start without ``DJANGO_SECRET_KEY``.
    """
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "8000")
    os.environ.setdefault("DJANGO_DEBUG", "1")
    sh(PYTHON, "manage.py", "migrate", "--noinput")
    print(f"\nwscommands example: http://{host}:{port}/  (WebSocket at /ws/)\n", flush=True)
    os.execv(
        BIN / "daphne",
        [str(BIN / "daphne"), "-b", host, "-p", port, *args, "project.asgi:application"],
    )


def test(args: list[str]) -> None:
    """Lint, then every test suite."""
    sh(BIN / "ruff", "check", ".")
    sh(BIN / "ruff", "format", "--check", ".")
    # The browser client's unit tests, its declarations against tsc and the classic build's
    # staleness check (tests/js): skipped without Node only outside CI.
    if shutil.which("node"):
        sh("node", "--test", "tests/js/")
    elif IN_CI:
        sys.exit("node is not installed: CI runs the JS tests (apt-get install nodejs npm)")
    else:
        print("+ node not found: skipping tests/js (apt-get install nodejs npm)", flush=True)
    if args:  # a chosen subset: run just that
        sh(PYTHON, "-m", "pytest", *args)
        return
    sh(PYTHON, "-m", "pytest", "--ignore=tests/browser")
    # Playwright's sync API keeps an event loop of its own running for the whole session,
    # which pytest-asyncio's tests cannot share: the browser tests get a run of their own.
    sh(PYTHON, "-m", "pytest", "tests/browser")
    # The core suite once more on the Redis backends (channels-redis, RedisBackend): see
    # tests/scaleout/redis_suite.py. It exits 0 with a message when Redis is down outside CI.
    sh(
        PYTHON,
        "-m",
        "pytest",
        "-p",
        "tests.scaleout.redis_suite",
        "tests/",
        "-m",
        "not e2e and not browser",
        "--ignore=tests/browser",
    )


def main() -> None:
    commands = {"run": run, "test": test, "install": lambda args: None}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: python3 dev.py {{{'|'.join(commands)}}} [args...]")
    install()
    install_node()
    commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
