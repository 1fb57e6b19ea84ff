# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= config/mailgate.toml

.PHONY: run test lint bench fuzz install install-run clean

# what running needs: mailgate and its dependencies (no test tools)
$(BIN)/.installed-run: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

# what the tests, lint and benchmarks need on top
$(BIN)/.installed: $(BIN)/.installed-run
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install-run: $(BIN)/.installed-run

install: $(BIN)/.installed

run: $(BIN)/.installed-run
	$(BIN)/mailgate --config $(CONFIG) run

lint: $(BIN)/.installed
	$(BIN)/ruff check mailgate tests bench
	$(BIN)/ruff format --check mailgate tests bench

test: $(BIN)/.installed
	bash scripts/install-system-deps.sh
	$(MAKE) lint
	$(BIN)/pytest -q -ra

# the fuzz test of the suite with more cases (FUZZ_CASES=...): prints time and peak RSS
FUZZ_CASES ?= 20000
fuzz: $(BIN)/.installed
	MAILGATE_FUZZ_CASES=$(FUZZ_CASES) $(BIN)/pytest -q -s tests/fuzz

bench: $(BIN)/.installed
	$(BIN)/python bench/all.py

clean:
	rm -rf var .pytest_cache
