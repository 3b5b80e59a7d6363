"""The benchmark suite: wscommands against a bare Channels consumer on the same server.

Run it with ``make bench`` (``make bench BENCH_ARGS=--quick`` for a shorter run); it writes
docs/benchmarks.md and docs/benchmarks.png.
"""
