"""docker-compose.yml: valid Compose, and its web commands serve one cluster when run here.

Docker does not run on CI machines, so the test runs what the file says (command and
environment of each web service, and the migrate step) as local processes, with REDIS_URL
and DATABASE_URL pointed at the local services.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.live import BIN, ROOT, Server, base_env, free_port, wait_for_port
from tests.scaleout.client import WSClient

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.postgres]

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SCHEMA = Path(ROOT).parent / "shared" / "data" / "compose-spec.json"
WEB = {
    name: service
    for name, service in COMPOSE["services"].items()
    if "daphne" in service.get("command", [])
}


def test_compose_file_is_valid():
    """The file validates against the official Compose schema; two web services, migrate,
    reachable only through the nginx proxy (deploy/nginx.conf, tests/reliability/test_proxy.py),
    which takes the client's address from X-Forwarded-For (--proxy-headers)."""
    import jsonschema

    # The schema names draft 07 by a URL jsonschema does not recognise: pick it explicitly.
    jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).validate(COMPOSE)
    assert len(WEB) == 2
    for service in WEB.values():
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert "healthcheck" in service
        assert {"REDIS_URL", "DATABASE_URL", "DJANGO_ALLOWED_HOSTS"} <= set(service["environment"])
        assert "ports" not in service and "--proxy-headers" in service["command"]
    proxy = COMPOSE["services"]["proxy"]
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"]
    assert {name: proxy["depends_on"][name]["condition"] for name in WEB} == dict.fromkeys(
        WEB, "service_healthy"
    )


class ComposeServer(Server):
    """A web service's own command, bound to a free local port instead of 0.0.0.0:8000."""

    def __init__(self, command: list[str], env: dict[str, str]):
        super().__init__(env, port=free_port())
        self.command = list(command)
        self.command[self.command.index("-p") + 1] = str(self.port)
        self.command[self.command.index("-b") + 1] = "127.0.0.1"
        self.command[0] = str(BIN / self.command[0])

    def start(self) -> ComposeServer:
        self.log_path.parent.mkdir(exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )
        wait_for_port(self.port, self.process)
        return self


def local_env(service: dict, redis_url: str, database_url: str) -> dict[str, str]:
    env = {k: str(v) for k, v in service["environment"].items()}
    env.update(REDIS_URL=redis_url, DATABASE_URL=database_url)
    # "${DJANGO_SECRET_KEY:?...}" is Compose interpolation: the test run's key stands in.
    env.pop("DJANGO_SECRET_KEY", None)
    return base_env(DJANGO_SETTINGS_MODULE="project.settings", **env)


async def test_compose_web_services_serve_one_cluster(redis_url, scaleout_database):
    """Migrate as the migrate service does, start both web commands, one cluster results."""
    migrate = COMPOSE["services"]["migrate"]
    env = local_env(migrate, redis_url, scaleout_database)
    subprocess.run(
        [str(BIN / "python"), *migrate["command"][1:]], cwd=ROOT, env=env, check=True, timeout=120
    )
    servers = [
        ComposeServer(service["command"], local_env(service, redis_url, scaleout_database))
        for service in WEB.values()
    ]
    clients = []
    try:
        for server in servers:
            server.start()
        one, two = [await WSClient.open(server.ws) for server in servers]
        clients = [one, two]
        value = await one.call("counter.increment", amount=1)
        assert (await two.push("counter", lambda v: v["value"] == value))["value"] == value
        assert await two.call("counter.get") >= value
    finally:
        for client in clients:
            await client.close()
        for server in servers:
            server.stop()
