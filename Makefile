# Wulin signal engine. `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install demo test test-fast test-slow lint bench benchmark-resco train-wulin clean

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

test: $(STAMP)  ## run the whole test suite, slow cases included (what CI runs)
	$(BIN)/pytest -q -m ""

test-fast: $(STAMP)  ## the suite without the slow cases
	$(BIN)/pytest -q

test-slow: $(STAMP)  ## run only the slow tests
	$(BIN)/pytest -q -m slow

lint: $(STAMP)  ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)  ## performance benchmarks (print ratios measured in one run)
	$(BIN)/python benchmarks/bench_sim.py
	$(BIN)/python benchmarks/bench_controllers.py
	$(BIN)/python benchmarks/bench_env.py

benchmark-resco: $(STAMP)  ## the RESCO maps, every controller, 3 seeds, table beside the published figures (hours on 2 cores)
	$(BIN)/pip install --quiet -e '.[benchmarks]'
	$(BIN)/wulin benchmark resco --out results/resco --seeds 3 --workers 2

train-wulin: $(STAMP)  ## imitate max-pressure, then PPO on Wulin AM peak (about 30 min on 2 cores); evaluate on 3 held-out seeds
	$(BIN)/wulin train agents/configs/wulin-am-peak-ppo.toml --out runs/wulin-am-peak-ppo
	$(BIN)/wulin evaluate runs/wulin-am-peak-ppo --scenario wulin-am-peak-v1 --seeds 3

clean:  ## remove caches (keeps .venv)
	rm -rf .pytest_cache .ruff_cache .mypy_cache
