# Two entry points for a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

$(BIN)/pension: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	# face_recognition's own requirements name dlib (a source build): its deps are in pyproject
	$(BIN)/pip install --quiet --no-deps face_recognition==1.3.0
	# face_recognition exits with status 0 when its models cannot load: check that it imported
	test "$$($(BIN)/python -c 'import face_recognition; print("faces ok")')" = "faces ok"
	touch $@

.PHONY: run test lint
run: $(BIN)/pension
	$(BIN)/pension serve

test: $(BIN)/pension
	scripts/ensure-chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: $(BIN)/pension
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
