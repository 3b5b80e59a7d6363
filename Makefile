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
