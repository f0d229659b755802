# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
# GPU users: make setup TORCH_SPEC="torch==2.13.0" TORCH_INDEX=https://download.pytorch.org/whl/cu128
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
PIP := $(VENV)/bin/pip
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test test-fast lint bench clean

setup: $(STAMP)

# Torch first, pinned: any looser spec pulls a multi-GB CUDA build on a CPU machine.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(PIP) install --quiet -e ".[dev,text]"
	touch $@

run: setup
	$(BIN)/orchestrate pipeline

test: setup
	$(BIN)/pytest

test-fast: setup
	$(BIN)/pytest -m "not ray and not e2e"

# ruff's lint rules, import order and formatting (pyproject.toml [tool.ruff]) over every Python folder;
# `$(BIN)/ruff format $(PY_DIRS)` applies the formatting.
PY_DIRS := orchestrator trainers hydra_plugins tests benchmarks
lint: setup
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)

# Benchmarks against peers (benchmarks/RESULTS.md); not part of `make test`. Each prints a RESULT line.
bench: setup
	for name in overhead scaling sweep compression tracking data; do $(BIN)/python benchmarks/$$name.py --quick || exit 1; done

clean:
	rm -rf outputs multirun ray_results mlruns.db mlartifacts mlruns .pytest_cache
