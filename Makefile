# Two commands do all the set-up on a fresh machine with python3:
#   make demo   creates .venv, installs Helios, builds the lake from data/sample, prints a summary
#   make test   installs what the tests need, then lint + type checks + import contracts + pytest
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HELIOS_HOME ?= $(CURDIR)/.helios
export DAGSTER_HOME ?= $(HELIOS_HOME)/dagster

.PHONY: demo test lint pytest ui bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/helios demo

test: lint pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

pytest: $(STAMP)
	$(BIN)/pytest

$(DAGSTER_HOME)/dagster.yaml:
	mkdir -p $(DAGSTER_HOME)
	printf 'telemetry:\n  enabled: false\n' > $@

ui: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_lake.py
	$(BIN)/python benchmarks/bench_features.py
	$(BIN)/python benchmarks/bench_model.py
	$(BIN)/python benchmarks/bench_gpu.py
	$(BIN)/python benchmarks/bench_stream.py
	$(BIN)/python benchmarks/bench_decision.py
	$(BIN)/python benchmarks/bench_replay.py

clean:
	rm -rf $(VENV) .helios .pytest_cache .mypy_cache .ruff_cache *.egg-info
