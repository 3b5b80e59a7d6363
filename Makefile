# Shortcuts for dev.py, which does the real work with nothing but python3.
.PHONY: run test install bench format soak-delivery

run:
	python3 dev.py run

test:
	python3 dev.py test

install:
	python3 dev.py install

format:
	python3 dev.py install && .venv/bin/ruff format . && .venv/bin/ruff check --fix .

# The benchmark suite: writes docs/benchmarks.md and docs/benchmarks.png (about 10 minutes;
# `make bench BENCH_ARGS=--quick` for a shorter run, see `python -m bench --help`). Its anchors
# are installed too: python-socketio by bench/requirements.txt, Node.js Socket.IO by dev.py
# install (npm ci in bench/anchors/node; without npm the report says that anchor did not run).
bench:
	python3 dev.py install && .venv/bin/python -m pip install --quiet -r bench/requirements.txt && .venv/bin/python -m bench $(BENCH_ARGS)

# The delivery checker (docs/protocol.md, "The delivery guarantee, precisely"): seeded random
# rounds on two processes and a redis-server of its own, until ROUNDS rounds or the first
# violation, which it prints with the seed and the history that shows it.
# `make soak-delivery SEED=7 ROUNDS=1000` (SOAK_ARGS: --minutes, --keep-going, --fault-rate).
SEED ?= 18
ROUNDS ?= 1000
soak-delivery:
	python3 dev.py install && .venv/bin/python -m tests.reliability.delivery_soak --seed $(SEED) --rounds $(ROUNDS) $(SOAK_ARGS)
