# Wulin signal engine. `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help demo test test-slow lint bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the engine with its dev tools

demo: $(STAMP)  ## run the main job on the embedded defaults
	$(BIN)/wulin experiment run experiments/demo.toml

test: $(STAMP)  ## run the default test suite (slow cases excluded)
	$(BIN)/pytest -q

test-slow: $(STAMP)  ## run only the slow tests
	$(BIN)/pytest -q -m slow

lint: $(STAMP)  ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)  ## performance benchmarks (print ratios)
	$(BIN)/python benchmarks/bench_sim.py

clean:  ## remove caches (keeps .venv)
	rm -rf .pytest_cache .ruff_cache .mypy_cache
