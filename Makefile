# Two commands for a newcomer: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit unit-fast bench docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# An editable install leaves shellflow without bytecode, and where PYTHONDONTWRITEBYTECODE is
# set every `flow` would compile its modules on each start: compile them here, and again
# (a no-op when nothing changed) before the demo and the benches.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m compileall -q shellflow
	touch $(STAMP)

# The quick start on the embedded default: no server needed; state lives in .demo/.
demo: $(STAMP)
	@$(BIN)/python -m compileall -q shellflow
	@PATH="$(CURDIR)/$(BIN):$$PATH" bash examples/quickstart.sh

# lint-imports checks the import contracts of pyproject.toml (the layers of DESIGN.md);
# --no-cache: the whole graph takes under a second, and no cache folder is left behind.
lint: $(STAMP)
	$(BIN)/ruff check shellflow tests bench tools
	$(BIN)/ruff format --check shellflow tests bench tools
	$(BIN)/lint-imports --no-cache --no-logo

typecheck: $(STAMP)
	$(BIN)/mypy shellflow

# Tests mostly wait on workers, brokers and databases, so more test processes than cores pay:
# each test owns its database, queues, Redis database and home (tests/engine/conftest.py).
TEST_PROCESSES ?= 4

unit: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_PROCESSES) --durations=25

# The tests that need no server and start no worker: under a minute.
unit-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_PROCESSES) tests/unit

test: lint typecheck unit

# Regenerate completions/ (bash, zsh, fish) and man/ (flow.1 and one page per command) from
# the click commands; tests/unit/test_completion.py and test_man.py fail while they are stale.
docs: $(STAMP)
	$(BIN)/python tools/gendocs.py

bench: $(STAMP)
	$(BIN)/python -m compileall -q shellflow
	$(BIN)/python bench/cli_startup.py

clean:
	rm -rf $(VENV) .demo build *.egg-info
