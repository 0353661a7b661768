# The two set-up commands of the README:
#   make run   - the authorization server on its embedded default (SQLite file, development KEK)
#   make test  - every check CI runs: lint, types, the whole test suite, the docs site and a
#                smoke run of the server and login benchmarks
# PYTHON picks the interpreter (3.11 or newer; default python3); scripts/venv.sh checks it,
# rebuilds a .venv made by another one, and installs what pyproject.toml lists.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SITE ?= $(VENV)/site

.PHONY: run test lint typecheck pytest docs docs-generate bench bench-smoke system-deps venv clean mutation

venv:
	@PYTHON='$(PYTHON)' VENV='$(VENV)' ./scripts/venv.sh

run: venv
	$(VENV)/bin/sealring serve

system-deps:
	./scripts/system-deps.sh

lint: venv
	$(VENV)/bin/ruff check src tests bench scripts
	$(VENV)/bin/ruff format --check src tests bench scripts

typecheck: venv
	$(VENV)/bin/mypy

pytest: venv system-deps
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The docs site: the generated pages must be current, and every link must resolve (--strict).
docs: venv
	$(PY) scripts/gen_docs.py --check
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir '$(abspath $(SITE))'

docs-generate: venv
	$(PY) scripts/gen_docs.py

test: lint typecheck pytest docs bench-smoke

# Seconds: Sealring and node-oidc-provider both answer and their tokens verify (no timing); each
# exchanges an authorization code and refreshes (needs Redis on 127.0.0.1:6379 for node's store).
bench-smoke: venv
	$(PY) bench/server_bench.py --smoke
	$(PY) bench/login_bench.py --smoke

bench: venv
	$(PY) bench/jose_bench.py
	$(PY) bench/resource_bench.py
	$(PY) bench/asgi_bench.py
	$(PY) bench/server_bench.py
	$(PY) bench/login_bench.py

# Mutation testing (docs/testing.md): `make mutation MODULE=src/sealring/jose/jwt.py` for one
# module, `make mutation` for every module of mutation/modules.toml. Not part of `make test`.
mutation: venv
	$(PY) -c 'import mutmut' 2>/dev/null || $(PY) -m pip install -q 'mutmut==3.8.1'
	$(PY) mutation/run.py $(if $(MODULE),$(MODULE),--all)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
