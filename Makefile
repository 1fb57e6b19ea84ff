# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= config/mailgate.toml

.PHONY: run test lint bench install clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(BIN)/.installed

run: $(BIN)/.installed
	$(BIN)/mailgate --config $(CONFIG) run

lint: $(BIN)/.installed
	$(BIN)/ruff check mailgate tests bench
	$(BIN)/ruff format --check mailgate tests bench

test: $(BIN)/.installed
	bash scripts/install-system-deps.sh
	$(MAKE) lint
	$(BIN)/pytest -q -ra

bench: $(BIN)/.installed
	$(BIN)/python bench/ingest.py

clean:
	rm -rf var .pytest_cache
