.PHONY: check test lint format demo bench

check: lint test

test:
	python -m pytest -q

lint:
	ruff check .
	ruff format --check composer sources bench

format:
	ruff format composer sources bench
	ruff check --fix .

demo:
	composer build manifests/demo.yaml

bench:
	python bench/bench_build.py
