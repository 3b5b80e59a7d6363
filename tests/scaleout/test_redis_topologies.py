"""The example project on Redis Sentinel and on TLS Redis (``rediss://``), as docs/scaling.md says.

Each test starts its own redis-server processes on free ports (never the shared Redis), one
real daphne process of the example project pointed at them, and two ``websockets`` clients;
it checks a broadcast, global state and presence end to end, then that the data is in the
throwaway Redis (so the topology, not some other Redis, carried it).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import IN_CI
from tests.live import free_port, wait_for_port

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

#: A guard against hangs; not a performance bound.
DEADLINE = 15


@pytest.fixture
def redis_servers(tmp_path: Path) -> Iterator:
    """Start ``redis-server`` processes with ``start(port, *args)``; all killed afterwards."""
    if shutil.which("redis-server") is None:
        message = "redis-server is not installed (apt-get install redis-server)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    processes: list[subprocess.Popen] = []

    def start(port: int, *args: str) -> subprocess.Popen:
        log = tmp_path / f"redis-{port}.log"
        with log.open("ab") as out:  # the child keeps its own descriptor
            process = subprocess.Popen(
                ["redis-server", *args], cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT
            )
        processes.append(process)
        try:
            wait_for_port(port, process)
        except RuntimeError:
            output = log.read_text(errors="replace")
            raise RuntimeError(f"redis-server {' '.join(args)} failed:\n{output}") from None
        return process

    yield start
    for process in processes:
        process.kill()
        process.wait()


def plain_args(port: int) -> list[str]:
    """A Redis without persistence on ``port`` (0: no plain-text port)."""
    return ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]


async def check_project(server, clients) -> None:
    """Broadcast, global state and presence through one daphne process and two clients."""
    a, b = await clients(server.ws), await clients(server.ws)
    ids = {(await c.call("whoami"))["connection_id"] for c in (a, b)}
    assert await a.call("counter.increment") == 1
    assert await b.push("counter", lambda v: v == {"value": 1}, timeout=DEADLINE)
    assert await b.call("counter.increment") == 2
    assert await a.push("counter", lambda v: v == {"value": 2}, timeout=DEADLINE)
    # presence.list: both anonymous clients counted for their process (written in the
    # background right after each handshake, so it may take a moment).
    process = next(iter(ids)).rpartition("~")[0]
    async with asyncio.timeout(DEADLINE):
        while (await a.call("presence.list"))["guests"].get(process, 0) < 2:
            await asyncio.sleep(0.1)


def stored_counter(client: redis.Redis) -> bytes | None:
    return client.hget("wscommands:state", "counter")


async def test_sentinel(redis_servers, daphne, sqlite_env, clients, tmp_path):
    """REDIS_SENTINELS + REDIS_SENTINEL_MASTER: the layer and the backend find the master."""
    master_port, sentinel_port = free_port(), free_port()
    redis_servers(master_port, *plain_args(master_port))
    config = tmp_path / "sentinel.conf"  # Sentinel rewrites its config: a file of our own
    config.write_text(
        f"port {sentinel_port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor mymaster 127.0.0.1 {master_port} 1\n"
    )
    redis_servers(sentinel_port, str(config), "--sentinel")
    sentinel = redis.Redis(port=sentinel_port, decode_responses=True)
    deadline = time.monotonic() + DEADLINE
    while sentinel.sentinel_get_master_addr_by_name("mymaster") != ("127.0.0.1", master_port):
        assert time.monotonic() < deadline, "Sentinel never reported the master"
        time.sleep(0.05)
    sentinel.close()

    env = {
        **sqlite_env,
        "REDIS_SENTINELS": f"127.0.0.1:{sentinel_port}",
        "REDIS_SENTINEL_MASTER": "mymaster",
    }
    await check_project(daphne(env), clients)
    with redis.Redis(port=master_port) as master:
        assert stored_counter(master) == b"2"


def write_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 it signed: (ca, cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def certificate(subject, issuer, public_key, signing_key, ca: bool, extensions=()):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        for extension in extensions:
            builder = builder.add_extension(extension, critical=False)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key, server_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = certificate("wscommands test CA", "wscommands test CA", ca_key.public_key(), ca_key, True)
    san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    server = certificate(
        "127.0.0.1", "wscommands test CA", server_key.public_key(), ca_key, False, [san]
    )
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    pem = serialization.Encoding.PEM
    paths[0].write_bytes(ca.public_bytes(pem))
    paths[1].write_bytes(server.public_bytes(pem))
    paths[2].write_bytes(
        server_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


async def test_tls(redis_servers, daphne, sqlite_env, clients, tmp_path):
    """REDIS_URL=rediss://... with REDIS_TLS_CA: both the layer and the backend speak TLS."""
    ca, cert, key = write_certificates(tmp_path)
    port = free_port()
    try:
        redis_servers(
            port,
            *plain_args(0),
            *("--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key)),
            *("--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no"),
        )
    except RuntimeError as exc:
        if "Bad directive" not in str(exc):  # what a redis-server built without TLS says
            raise
        message = f"this redis-server was built without TLS support:\n{exc}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    env = {**sqlite_env, "REDIS_URL": f"rediss://127.0.0.1:{port}/0", "REDIS_TLS_CA": str(ca)}
    await check_project(daphne(env), clients)
    with redis.Redis.from_url(f"rediss://127.0.0.1:{port}/0", ssl_ca_certs=str(ca)) as tls:
        assert stored_counter(tls) == b"2"
