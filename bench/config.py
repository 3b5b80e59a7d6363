"""How much load each scenario makes: the full suite, ``--quick`` and ``--tiny``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Config:
    """How much load each scenario makes; see :data:`FULL`, :data:`QUICK` and :data:`TINY`."""

    rounds: int
    echo_clients: int
    echo_seconds: float
    broadcast_sizes: tuple[int, ...]
    broadcasts_per_round: int
    idle_connections: int
    memory_rounds: int
    slow_seconds: float
    burst_clients: int
    burst_batch: int
    burst_rounds: int
    #: Broadcasts a resumable client misses before it resumes (the resume scenario).
    resume_missed: int = 500
    #: Signed-in users on the process killed in the crash-leave scenario.
    presence_users: int = 50
    #: Sockets of the one session on each of the two processes (the logout-close scenario).
    sockets_per_process: int = 5
    #: Idle connections the idle scenario asks one engine process to hold (clamped to what
    #: RLIMIT_NOFILE allows, see bench/idle.py), the smaller count it compares connect
    #: times with, and the handshakes timed at each count.
    idle_count: int = 50_000
    idle_first: int = 1_000
    idle_probes: int = 100


FULL = Config(
    rounds=5,
    echo_clients=50,
    echo_seconds=3.0,
    broadcast_sizes=(500, 1000, 2000, 3000),
    broadcasts_per_round=5,
    idle_connections=2000,
    memory_rounds=3,
    slow_seconds=2.0,
    burst_clients=3000,
    burst_batch=100,
    burst_rounds=2,
)
QUICK = Config(
    rounds=3,
    echo_clients=50,
    echo_seconds=1.5,
    broadcast_sizes=(1000, 3000),
    broadcasts_per_round=3,
    idle_connections=2000,
    memory_rounds=1,
    slow_seconds=2.0,
    burst_clients=3000,
    burst_batch=100,
    burst_rounds=1,
)
#: For the smoke test: every code path, a handful of clients, one round.
TINY = Config(
    rounds=1,
    echo_clients=4,
    echo_seconds=0.3,
    broadcast_sizes=(6, 12),
    broadcasts_per_round=2,
    idle_connections=20,
    memory_rounds=1,
    slow_seconds=0.5,
    burst_clients=30,
    burst_batch=10,
    burst_rounds=1,
    resume_missed=20,
    presence_users=5,
    sockets_per_process=2,
    idle_count=40,
    idle_first=10,
    idle_probes=5,
)
