"""Measurements behind docs/scaling.md (not a test: no timing is asserted anywhere).

    TEST_REDIS_URL=redis://127.0.0.1:6379/12 .venv/bin/python -m tests.scaleout.measure

1. One broadcast to 1000 clients on two daphne processes: Redis commands (INFO
   commandstats delta) and the time until the last client has it.
2. The same fan-out with plain channel-layer groups (one group_add per consumer channel,
   one group_send), as a Channels app without wscommands' hub does it.
3. RedisChannelLayer against RedisPubSubChannelLayer for our traffic: group_send to a group
   of two process channels, received by both, 500 times.
"""

from __future__ import annotations

import asyncio
import os
import time

import redis

from tests.live import Server, base_env
from tests.scaleout.client import WSClient

URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/12")
CLIENTS = 1000


def calls() -> int:
    stats = redis.Redis.from_url(URL).info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if "info" not in k)


async def hub_broadcast() -> tuple[int, float]:
    env = base_env(
        REDIS_URL=URL,
        DJANGO_SETTINGS_MODULE="tests.scaleout.settings",
        WSCOMMANDS_PRESENCE_EVENTS="0",
        WSCOMMANDS_LIMITS='{"MAX_CONNECTIONS_PER_IP": null}',  # 1000 clients from one address
    )
    servers = [Server(env).start(), Server(env).start()]
    try:
        clients = []
        for i in range(CLIENTS):
            clients.append(await WSClient.open(servers[i % 2].ws))
        await asyncio.sleep(2)  # let heartbeats and handshakes settle before counting
        before = calls()
        start = time.perf_counter()
        await clients[0].request({"op.broadcast": {"message": {"m": 1}}})
        await asyncio.gather(*(c.push("m", timeout=60) for c in clients))
        elapsed = time.perf_counter() - start
        used = calls() - before
        await asyncio.gather(*(c.close() for c in clients))
        return used, elapsed
    finally:
        for server in servers:
            server.stop()


async def plain_groups(layer_class: str) -> tuple[int, float]:
    from channels_redis.core import RedisChannelLayer

    layer = RedisChannelLayer(hosts=[{"address": URL, "max_connections": 2000}])
    channels = [await layer.new_channel() for _ in range(CLIENTS)]
    await asyncio.gather(*(layer.group_add("plain", c) for c in channels))
    before = calls()
    start = time.perf_counter()
    await layer.group_send("plain", {"type": "m"})
    await asyncio.gather(*(layer.receive(c) for c in channels))
    elapsed = time.perf_counter() - start
    used = calls() - before
    await layer.flush()
    return used, elapsed


async def layer_round_trips(path: str, n: int = 500) -> float:
    from django.utils.module_loading import import_string

    layer = import_string(path)(hosts=[URL])
    procs = [await layer.new_channel(), await layer.new_channel()]
    for channel in procs:
        await layer.group_add("g", channel)
    start = time.perf_counter()
    for _ in range(n):
        await layer.group_send("g", {"type": "m", "text": "x" * 100})
        await asyncio.gather(*(layer.receive(c) for c in procs))
    elapsed = time.perf_counter() - start
    await layer.flush()
    return elapsed / n


async def main() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()
    redis.Redis.from_url(URL).flushdb()
    used, elapsed = await hub_broadcast()
    print(
        f"hub broadcast to {CLIENTS} clients on 2 processes: {used} Redis commands, "
        f"last client after {elapsed * 1000:.0f} ms"
    )
    used, elapsed = await plain_groups("core")
    print(
        f"plain group_send to {CLIENTS} channels: {used} Redis commands, "
        f"all received after {elapsed * 1000:.0f} ms"
    )
    for path in (
        "channels_redis.core.RedisChannelLayer",
        "channels_redis.pubsub.RedisPubSubChannelLayer",
    ):
        per = await layer_round_trips(path)
        print(f"{path}: group_send + 2 receives: {per * 1e6:.0f} us per message")


if __name__ == "__main__":
    asyncio.run(main())
