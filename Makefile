# Two commands for a newcomer: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The quick start on the embedded default: no server needed; state lives in .demo/.
demo: $(STAMP)
	@PATH="$(CURDIR)/$(BIN):$$PATH" bash examples/quickstart.sh

lint: $(STAMP)
	$(BIN)/ruff check shellflow tests bench
	$(BIN)/ruff format --check shellflow tests bench

typecheck: $(STAMP)
	$(BIN)/mypy shellflow

unit: $(STAMP)
	$(BIN)/python -m pytest -q

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python bench/cli_startup.py

clean:
	rm -rf $(VENV) .demo build *.egg-info
