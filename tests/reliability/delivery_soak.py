"""Randomized, seeded rounds of the delivery checker, and its command line.

A round: fresh clients (resumable and plain, anonymous or signed in, on either process)
connect; publishers on both processes push numbered messages to ``all``, the round's groups
and the users while the clients join, leave, reconnect and resume at random; sometimes a
fault (kill -9 of a process then its restart, Redis restarted empty, Redis flushed) in the
middle; then everything closes and :func:`~.delivery_checker.check` judges the history.

``python -m tests.reliability.delivery_soak --seed 18 --rounds 1000`` (``make soak-delivery``)
stops at the first round with a violation and prints the seed and the history that shows it.
The seed fixes every choice (clients, their actions, targets, faults); the interleaving is the
machine's, so a seed reproduces a scenario, and a race shows in some of its runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import shutil
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from websockets.asyncio.client import connect

from tests.reliability.delivery_checker import Violation, check, report
from tests.reliability.delivery_clients import Client
from tests.reliability.delivery_harness import USERS, Cluster, Index, Publisher
from tests.reliability.delivery_history import History

HISTORY_SIZE = 64
FAULTS = ("kill", "redis_restart", "redis_flush")


@dataclass
class Outcome:
    """What a soak did: rounds run, and the first failing round's violations and report."""

    seed: int
    rounds: int = 0
    pushes: int = 0
    faults: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    report: str = ""


async def probe(cluster: Cluster, timeout: float = 90) -> None:
    """Wait until both processes serve again: a broadcast from each reaches a fresh
    connection on each (after a fault, that is when the checker counts on delivery again)."""
    async with asyncio.timeout(timeout):
        while not await _probe_once(cluster):
            await asyncio.sleep(0.5)


async def _probe_once(cluster: Cluster) -> bool:
    token = secrets.token_hex(4)
    links = []

    async def hears_both(ws) -> bool:
        heard = set()
        async for text in ws:
            message = json.loads(text)
            if "errors" in message:
                return False
            if str(message.get("probe", "")).startswith(token):
                heard.add(message["probe"])
            if len(heard) == len(links):
                return True
        return False

    try:
        for server in cluster.servers:
            links.append(await connect(server.ws, open_timeout=5))
        for i, ws in enumerate(links):
            broadcast = {"op.broadcast": {"message": {"probe": f"{token}-{i}"}}, "request_id": i}
            await ws.send(json.dumps(broadcast))
        async with asyncio.timeout(5):
            return all(await asyncio.gather(*(hears_both(ws) for ws in links)))
    except Exception:
        return False
    finally:
        for ws in links:
            await ws.close()


async def inject(cluster: Cluster, index: Index, clients: list[Client], kind: str) -> None:
    """A fault, after every connection got what it must (the drain), then the recovery."""
    what = f"process {index.history.round % 2}" if kind == "kill" else "redis"
    until = index.fault(kind, what)
    links = [c.link for c in clients if c.link is not None and c.link.open_]
    await asyncio.gather(*(link.drain(list(link.since), until) for link in links))
    if kind == "kill":
        server = cluster.servers[index.history.round % 2]
        await asyncio.to_thread(server.stop, signal.SIGKILL)
        await asyncio.to_thread(server.start)
    elif kind == "redis_restart":
        await asyncio.to_thread(cluster.redis.stop)
        await asyncio.to_thread(cluster.redis.start)
    else:
        await asyncio.to_thread(cluster.redis.cli, "flushall")
    await probe(cluster)
    index.recovered(kind)


async def run_round(
    cluster: Cluster,
    history: History,
    rng: random.Random,
    fault_rate: float = 0.35,
    publishers: int = 4,
) -> str | None:
    """One round into ``history``; the fault it injected, if any."""
    index = Index(history)
    groups = [f"dc{history.round}-{i}" for i in range(3)]
    pks = list(cluster.users.values())
    clients: list[Client] = []
    for i in range(rng.randint(8, 14)):
        username = rng.choice((None, *USERS))
        session = await asyncio.to_thread(cluster.session, username) if username else None
        user = cluster.users.get(username)
        resumable = rng.random() < 0.7
        client_rng = random.Random(rng.random())
        clients.append(
            Client(
                f"c{i}", cluster, index, client_rng, resumable=resumable, user=user, session=session
            )
        )
    await asyncio.gather(*(c.connect() for c in clients))
    stop = asyncio.Event()
    streams = ["all", "all", *(f"group:{g}" for g in groups), *(f"user:{pk}" for pk in pks)]

    async def publishing(publisher: Publisher, own: random.Random) -> None:
        while not stop.is_set():
            await publisher.publish(own.choice(streams))
            await asyncio.sleep(own.uniform(0, 0.03))

    senders = [Publisher(f"p{i}", cluster, i % 2, index) for i in range(publishers)]
    tasks = [asyncio.create_task(publishing(p, random.Random(rng.random()))) for p in senders]
    steps = rng.randint(4, 10)
    await asyncio.gather(*(c.act(steps, groups) for c in clients))
    fault = rng.choice(FAULTS) if rng.random() < fault_rate else None
    if fault:
        await inject(cluster, index, clients, fault)
        await asyncio.gather(*(c.act(steps, groups) for c in clients))
    stop.set()
    await asyncio.gather(*tasks)
    await asyncio.gather(*(c.close() for c in clients))
    for publisher in senders:
        if publisher.link is not None:
            await publisher.link.ws.close()
    return fault


def summary(history: History) -> str:
    """What a round exercised: pushes, connections, resume outcomes."""
    outcomes: Counter[str] = Counter()
    for e in history.events:
        if e.kind == "resumed":
            entries = (e.data.get("result") or {}).values()
            outcomes.update(x.get("reason", "recovered") for x in entries)
            outcomes.update([e.data["error"]] if e.data.get("error") else [])
    kinds = Counter(e.kind for e in history.events)
    return (
        f"{kinds['publish']} publishes, {kinds['push']} pushes received, "
        f"{kinds['ready']} connections, resumes {dict(outcomes)}"
    )


async def soak(
    seed: int,
    rounds: int,
    budget: float | None = None,
    say: Callable[[str], None] = print,
    keep_going: bool = False,
    fault_rate: float = 0.35,
    publishers: int = 4,
    first: int = 0,
) -> Outcome:
    """Up to ``rounds`` rounds (or ``budget`` seconds), stopping at the first violation
    (``keep_going``: only reporting each round's violations per rule)."""
    outcome = Outcome(seed)
    cluster = await asyncio.to_thread(Cluster(HISTORY_SIZE).start)
    started = time.monotonic()
    try:
        for number in range(first, first + rounds):
            history = History(seed=seed, round=number)
            rng = random.Random(f"{seed}:{number}")
            fault = await run_round(cluster, history, rng, fault_rate, publishers)
            outcome.rounds += 1
            outcome.pushes += sum(e.kind == "publish" for e in history.events)
            outcome.faults += [fault] if fault else []
            violations = check(history, HISTORY_SIZE)
            found = len(violations)
            say(f"round {number}: {summary(history)}, fault {fault}: {found} violations")
            if violations:
                firsts: dict[str, Violation] = {}
                for v in violations:
                    firsts.setdefault(v.rule, v)
                counts = {r: sum(v.rule == r for v in violations) for r in sorted(firsts)}
                say(f"round {number}: violations per rule {counts}")
                if keep_going:
                    say("\n\n".join(report(history, v) for v in firsts.values()))
                if not outcome.violations:
                    outcome.violations = violations
                    outcome.report = "\n\n".join(
                        [f"seed={seed} round={number}: violations per rule {counts}"]
                        + [report(history, v) for v in firsts.values()]
                    )
                if not keep_going:
                    break
            if budget is not None and time.monotonic() - started > budget:
                break
    finally:
        await asyncio.to_thread(cluster.stop)
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument(
        "--first", type=int, default=0, help="start at this round (each round has its own RNG)"
    )
    parser.add_argument("--minutes", type=float, default=None, help="stop after this long")
    parser.add_argument(
        "--keep-going", action="store_true", help="count violations per round, do not stop"
    )
    parser.add_argument("--fault-rate", type=float, default=0.35, help="rounds with a fault")
    parser.add_argument("--publishers", type=int, default=4, help="alternately on each process")
    args = parser.parse_args(argv)
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is needed (apt-get install redis-server): the soak runs its own")
    budget = args.minutes * 60 if args.minutes else None
    options = {"fault_rate": args.fault_rate, "publishers": args.publishers, "first": args.first}
    run = soak(args.seed, args.rounds, budget, keep_going=args.keep_going, **options)
    outcome = asyncio.run(run)
    if outcome.violations:
        print(outcome.report)
        return 1
    print(
        f"seed={args.seed}: {outcome.rounds} rounds, {outcome.pushes} pushes, "
        f"faults {outcome.faults}: no violation"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
