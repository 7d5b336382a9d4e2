# skewless — two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# setup.py's hot modules, compiled in place by mypyc; rebuilt when anything in schemas/
# changes (the compiled code is built against the types it imports).
NATIVE_DEPS := setup.py $(wildcard schemas/*.py schemas/features/*.py)
NATIVE := $(VENV)/.native
export PYTHONHASHSEED := 0

.PHONY: install demo test lint unit bench up down status clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or make PYTHON=python3)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# mypyc and a C compiler: a failed build says so and the modules run as Python.
$(NATIVE): $(STAMP) $(NATIVE_DEPS)
	@echo "compiling the hot modules with mypyc (setup.py)"
	@rm -rf build
	@if SKEWLESS_COMPILE=1 $(BIN)/python setup.py --quiet build_ext --inplace >$(VENV)/native.log 2>&1; \
	then echo "compiled: $$(ls schemas/*.so schemas/features/*.so | grep -vc __mypyc) modules"; \
	else echo "warning: mypyc build failed (see $(VENV)/native.log); running the pure-Python modules"; \
	rm -f schemas/*.so schemas/features/*.so; fi
	@touch $(NATIVE)

install: $(STAMP) $(NATIVE)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

unit: install
	$(BIN)/pytest -q -m "not integration"

bench: install
	$(BIN)/python benchmarks/run_all.py

demo: install
	$(BIN)/skewless demo

up: install
	$(BIN)/skewless up
down: install
	$(BIN)/skewless down
status: install
	$(BIN)/skewless status

clean:
	-$(BIN)/skewless down 2>/dev/null
	rm -rf .skewless .pytest_cache .mypy_cache .ruff_cache build $(NATIVE)
	rm -f schemas/*.so schemas/features/*.so
