"""docker-compose.yml: valid Compose, and its web and engine commands serve one cluster when
run here.

Docker does not run on CI machines, so the test runs what the file says (command, environment
and healthcheck of each web and engine service, and the migrate step) as local processes,
with REDIS_URL and DATABASE_URL pointed at the local services.
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
#: The services serving /ws/ with manage.py wscommands_engine.
ENGINES = {
    name: service
    for name, service in COMPOSE["services"].items()
    if "wscommands_engine" in service.get("command", [])
}
NGINX = (ROOT / "deploy" / "nginx.conf").read_text()
PROMETHEUS = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())


def port_of(service: dict) -> str:
    """The port a web or engine service's command listens on."""
    command = service["command"]
    return command[command.index("--port" if "wscommands_engine" in command else "-p") + 1]


def test_compose_file_is_valid():
    """The file validates against the official Compose schema; two web services and two
    engine services, after migrate, reachable only through the nginx proxy (deploy/nginx.conf,
    tests/reliability/test_proxy.py), which routes /ws/ to the engines and the rest to the web
    services, and whose X-Forwarded-For gives both the client's address (--proxy-headers,
    --forwarded-allow-ips)."""
    import jsonschema

    # The schema names draft 07 by a URL jsonschema does not recognise: pick it explicitly.
    jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).validate(COMPOSE)
    assert len(WEB) == 2
    for service in WEB.values():
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert "healthcheck" in service
        assert {"REDIS_URL", "DATABASE_URL", "DJANGO_ALLOWED_HOSTS"} <= set(service["environment"])
        assert "ports" not in service and "--proxy-headers" in service["command"]
    assert len(ENGINES) == 2
    for service in ENGINES.values():
        assert service["environment"] == next(iter(WEB.values()))["environment"]
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert "healthcheck" in service and "ports" not in service
        command = service["command"]
        assert command[command.index("--forwarded-allow-ips") + 1] == "*"
        assert command[command.index("--host") + 1] == "0.0.0.0"
    proxy = COMPOSE["services"]["proxy"]
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"]
    assert {name: proxy["depends_on"][name]["condition"] for name in WEB | ENGINES} == (
        dict.fromkeys(WEB | ENGINES, "service_healthy")
    )
    # nginx's upstreams name every service on the port its command listens on.
    for name, service in (WEB | ENGINES).items():
        assert f"server {name}:{port_of(service)};" in NGINX
    assert "location /ws/ {\n            proxy_pass http://engine;" in NGINX
    # Prometheus scrapes each of them on that port: every process serves its own /metrics.
    (job,) = PROMETHEUS["scrape_configs"]
    (targets,) = job["static_configs"]
    assert targets["targets"] == [f"{name}:{port_of(s)}" for name, s in (WEB | ENGINES).items()]


class ComposeServer(Server):
    """A web or engine service's own command, bound to a free local port instead of
    0.0.0.0:8000 (or 8001); its healthcheck, run against that port."""

    def __init__(self, service: dict, env: dict[str, str]):
        engine = "wscommands_engine" in service["command"]
        super().__init__(env, kind="engine" if engine else "daphne", port=free_port())
        self.command = list(service["command"])
        port, host = ("--port", "--host") if engine else ("-p", "-b")
        self.service_port = self.command[self.command.index(port) + 1]
        self.command[self.command.index(port) + 1] = str(self.port)
        self.command[self.command.index(host) + 1] = "127.0.0.1"
        self.command[0] = str(BIN / self.command[0])
        self.healthcheck = service["healthcheck"]["test"]

    def healthy(self) -> bool:
        """Whether the service's healthcheck command (``CMD python -c ...``) passes here."""
        cmd, python, *args = self.healthcheck
        assert (cmd, python) == ("CMD", "python")
        args = [arg.replace(f":{self.service_port}", f":{self.port}") for arg in args]
        args = [arg.replace(f", {self.service_port})", f", {self.port})") for arg in args]
        assert any(str(self.port) in arg for arg in args), f"no port in {args}"
        checked = subprocess.run([str(BIN / "python"), *args], capture_output=True, timeout=30)
        return checked.returncode == 0

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
    """Migrate as the migrate service does, start both web commands and an engine's, each
    passes its healthcheck, and one cluster results: what a client of one web process
    changes reaches a client of the other and a client of the engine."""
    migrate = COMPOSE["services"]["migrate"]
    env = local_env(migrate, redis_url, scaleout_database)
    subprocess.run(
        [str(BIN / "python"), *migrate["command"][1:]], cwd=ROOT, env=env, check=True, timeout=120
    )
    services = [*WEB.values(), next(iter(ENGINES.values()))]
    servers = [
        ComposeServer(service, local_env(service, redis_url, scaleout_database))
        for service in services
    ]
    clients = []
    try:
        for server in servers:
            server.start()
        assert [server.healthy() for server in servers] == [True] * len(servers)
        one, two, engine = [await WSClient.open(server.ws) for server in servers]
        clients = [one, two, engine]
        value = await one.call("counter.increment", amount=1)
        for other in (two, engine):
            assert (await other.push("counter", lambda v: v["value"] == value))["value"] == value
            assert await other.call("counter.get") >= value
    finally:
        for client in clients:
            await client.close()
        for server in servers:
            server.stop()
