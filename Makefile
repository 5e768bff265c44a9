PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test faults pictures lint serve clean

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
	$(BIN)/ruff check bot graphs tests
	$(BIN)/mypy bot graphs
	$(BIN)/pytest

## make faults: the fault suite (kill -9, PostgreSQL outages, Slack faults, fuzzing); see docs/reliability.md
faults: $(STAMP)
	$(BIN)/pytest -m faults tests/faults

## make pictures: rewrite the screenshots under docs/ from the browser tests
pictures: $(STAMP)
	UPDATE_DOCS_PICTURES=1 $(BIN)/pytest tests/browser

lint: $(STAMP)
	$(BIN)/ruff check bot graphs tests
	$(BIN)/ruff format --check bot graphs tests
	$(BIN)/mypy bot graphs

serve: $(STAMP)
	$(BIN)/python -m bot serve

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
