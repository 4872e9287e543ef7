.PHONY: install demo test lint bench

install:
	./scripts/install.sh

demo: install
	.venv/bin/cordon demo

test:
	./scripts/test.sh

lint: install
	.venv/bin/ruff check .
	.venv/bin/mypy

bench: install
	.venv/bin/python benchmarks/edge_bench.py
