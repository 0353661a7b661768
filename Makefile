# The two set-up commands of the README:
#   make run   - the authorization server on its embedded default (SQLite file, development KEK)
#   make test  - every check CI runs: lint, types and the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench system-deps clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all,dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/sealring serve

system-deps:
	./scripts/system-deps.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP) system-deps
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

bench: $(STAMP)
	$(PY) bench/jose_bench.py
	$(PY) bench/resource_bench.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
