# The two commands of the README: `make demo` and `make test`. Both create or reuse .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

demo: setup
	JUPYTER_REMOTE_BACKEND=local $(PY) examples/quickstart.py

lint: setup
	$(PY) -m ruff check jupyter_remote tests examples
	$(PY) -m ruff format --check jupyter_remote tests examples

typecheck: setup
	$(PY) -m mypy

unit: setup
	$(PY) -m pytest tests

test: lint typecheck unit

bench: setup
	$(PY) -m pip install --quiet -e ".[test,bench]"
	$(PY) tests/benchmarks/run.py
	$(PY) tests/benchmarks/nomad_bench.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
