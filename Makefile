PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: dev test faults pictures lint serve clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

## make dev: the playground (local Slack sandbox + bot + embedded PostgreSQL), no accounts or keys needed
dev: $(STAMP)
	$(BIN)/python -m bot dev

## make test: install everything and run the whole suite
test: $(STAMP)
	$(BIN)/ruff check bot graphs tests bench
	$(BIN)/mypy
	$(BIN)/pytest

## make faults: the fault suite (kill -9, PostgreSQL outages, Slack faults, fuzzing); see docs/reliability.md
faults: $(STAMP)
	$(BIN)/pytest -m faults tests/faults

## make pictures: rewrite the screenshots under docs/ from the browser tests
pictures: $(STAMP)
	UPDATE_DOCS_PICTURES=1 $(BIN)/pytest tests/browser

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e ".[test,bench]"
	touch $(BENCH_STAMP)

## make bench: the bot against the bare graph; rewrites docs/benchmarks.md and docs/benchmarks/*.png
## (ARGS=--quick for a short run; PostgreSQL from DATABASE_URL or TEST_DATABASE_URL, else an embedded one)
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check bot graphs tests bench
	$(BIN)/ruff format --check bot graphs tests bench
	$(BIN)/mypy

serve: $(STAMP)
	$(BIN)/python -m bot serve

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
