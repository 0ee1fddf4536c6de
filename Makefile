# The README's commands live here. Every target installs what it needs, so each one works on
# a fresh machine (Python 3.11, Go, apt-get as root).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-16)

.PHONY: install tools lint format typecheck test test-fast demo bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "==> installing kitaru and its development tools into $(VENV)"
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)  ## Python environment with kitaru and its dev tools

tools:  ## Jaeger and the Collector (built from Go modules), Prometheus, Chromium, Redis, PostgreSQL
	bash scripts/tools/build-tools.sh
	bash scripts/install-system-deps.sh

lint: install  ## ruff (lint + format check), mypy --strict, the layer contracts (import-linter)
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/ruff format --check src tests benchmarks examples
	$(VENV)/bin/mypy
	PYTHONPATH=src $(VENV)/bin/lint-imports --no-logo

format: install
	$(VENV)/bin/ruff format src tests benchmarks examples
	$(VENV)/bin/ruff check --fix src tests benchmarks examples

test: install tools lint  ## everything CI runs: tools, lint, type check, the whole test suite
	bash scripts/run-tests.sh

test-fast: install  ## unit tests only
	$(PY) -m pytest tests/unit -q

demo: install  ## a flow whose live events you watch, with its trace
	bash scripts/demo.sh

bench: install  ## benchmarks (full run); BENCH_ARGS=--smoke for the short version
	bash scripts/bench.sh $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache
