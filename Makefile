# The two commands of the README: `make demo` and `make test`. Both create or reuse .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The JupyterLab sidebar: TypeScript in labextension/, built into the package (shipped in the
# wheel as shared-data) when its sources change; needs Node.js and npm, users of the wheel do not.
LABEXT := labextension
LABEXT_OUT := jupyter_remote/labextension/package.json
LABEXT_SRC := $(wildcard $(LABEXT)/src/*.ts $(LABEXT)/style/*) $(LABEXT)/package.json $(LABEXT)/tsconfig.json
LABEXT_DEPS := $(LABEXT)/node_modules/.package-lock.json

.PHONY: demo test lint typecheck unit bench setup clean

setup: $(STAMP) $(LABEXT_OUT)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

$(LABEXT_DEPS): $(LABEXT)/package.json $(LABEXT)/package-lock.json
	cd $(LABEXT) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $@

# Built against the JupyterLab installed in .venv (its staging/ holds the core's versions); the
# editable install is then refreshed so that share/jupyter/labextensions holds the new build.
$(LABEXT_OUT): $(LABEXT_SRC) $(LABEXT_DEPS) $(STAMP)
	cd $(LABEXT) && node_modules/.bin/tsc && node node_modules/@jupyterlab/builder/lib/build-labextension.js \
		--core-path "$$(../$(PY) -c 'import jupyterlab, os; print(os.path.join(os.path.dirname(jupyterlab.__file__), "staging"))')" .
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $@

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
	rm -rf $(VENV) .mypy_cache .ruff_cache $(LABEXT)/node_modules $(LABEXT)/lib jupyter_remote/labextension
