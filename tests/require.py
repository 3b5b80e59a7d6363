"""``require(service)``: the one way a test needs something outside Python.

Present: returns its address or path. Missing: the test is skipped with how to get it, except
in CI (``CI=true``), where it fails, so a CI run never passes by skipping what it should run.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
#: package.json's development tools (tsc, the AsyncAPI JSON Schemas), installed by dev.py.
NODE_MODULES = ROOT / "node_modules"


def answers(url: str, default_port: int) -> bool:
    """Whether something accepts TCP connections at the URL's host and port."""
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def _binary(name: str) -> Callable[[], str | None]:
    def find() -> str | None:
        found = shutil.which(name) or shutil.which(name, path=str(BIN))
        return found or next(iter(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")), None)

    return find


def _module(name: str) -> Callable[[], str | None]:
    return lambda: name if importlib.util.find_spec(name) is not None else None


def _node_modules() -> str | None:
    tools = (NODE_MODULES / ".bin" / "tsc", NODE_MODULES / "@asyncapi" / "specs")
    return str(NODE_MODULES) if all(path.exists() for path in tools) else None


def _chromium() -> str | None:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    return path if Path(path).exists() else None


@dataclass(frozen=True)
class Service:
    """How to find a service (its address or path, None when missing) and how to get it."""

    find: Callable[[], str | None]
    how: str


SERVICES: dict[str, Service] = {
    "redis": Service(
        lambda: REDIS_URL if answers(REDIS_URL, 6379) else None,
        f"Redis at {REDIS_URL} (TEST_REDIS_URL): redis-server --daemonize yes --bind "
        '127.0.0.1 --port 6379 --save "" --appendonly no',
    ),
    "postgres": Service(
        lambda: POSTGRES_URL if answers(POSTGRES_URL, 5432) else None,
        f"PostgreSQL at {POSTGRES_URL} (TEST_DATABASE_URL): pg_ctlcluster "
        "--skip-systemctl-redirect $(ls /etc/postgresql) main start",
    ),
    "redis-server": Service(_binary("redis-server"), "apt-get install redis-server"),
    "initdb": Service(_binary("initdb"), "apt-get install postgresql"),
    "runuser": Service(_binary("runuser"), "apt-get install util-linux"),
    "kosoku": Service(_binary("kosoku"), "pip install -r requirements-dev.txt"),
    "picows": Service(_module("picows"), "pip install -r requirements-dev.txt"),
    "node": Service(_binary("node"), "apt-get install nodejs npm"),
    "node_modules": Service(_node_modules, "npm ci (or python3 dev.py install)"),
    "chromium": Service(_chromium, "apt-get install chromium"),
    # Debian's nginx lives in /usr/sbin, which a non-root PATH may lack.
    "nginx": Service(
        lambda: shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin"),
        "apt-get install -y nginx (.ci/run installs it)",
    ),
}


def missing(message: str) -> NoReturn:
    """Fail in CI, skip elsewhere: for what a test finds missing beyond ``require``."""
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def require(service: str) -> str:
    """The service's address or path; else skip (fail in CI) saying how to get it."""
    entry = SERVICES[service]
    found = entry.find()
    if found is None:
        missing(f"{service} is not available: {entry.how}")
    return found
