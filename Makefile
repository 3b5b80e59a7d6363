# Shortcuts for dev.py, which does the real work with nothing but python3.
.PHONY: run test install bench format

run:
	python3 dev.py run

test:
	python3 dev.py test

install:
	python3 dev.py install

format:
	python3 dev.py install && .venv/bin/ruff format . && .venv/bin/ruff check --fix .

# The benchmark suite: writes docs/benchmarks.md and docs/benchmarks.png (about 10 minutes;
# `make bench BENCH_ARGS=--quick` for a shorter run, see `python -m bench --help`).
bench:
	python3 dev.py install && .venv/bin/python -m pip install --quiet -r bench/requirements.txt && .venv/bin/python -m bench $(BENCH_ARGS)
