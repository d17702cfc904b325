# Two entry points for a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

$(BIN)/pension: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

.PHONY: run test lint
run: $(BIN)/pension
	$(BIN)/pension serve

test: $(BIN)/pension
	scripts/ensure-chromium
	scripts/ensure-nginx
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: $(BIN)/pension
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
