PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: dev test faults pictures lint serve clean bench

# Installs with uv when it can (uv on PATH, else uv from PyPI into the venv: it downloads and installs in
# parallel, several times faster than pip); with pip when it can't. `make dev` installs what the bot runs on and
# the `dev` extra (the embedded PostgreSQL); the test tools (browser driver, LangGraph CLI, linters) come with
# the first `make test`. The venv is made without pip (seeding pip alone takes longer than the rest), which is
# added only if uv can't be had.
UV_VERSION := 0.13.9
# The extras each target needs (in variables: a comma inside $(call …) would split its argument).
DEV_EXTRAS := -e ".[dev]"
TEST_EXTRAS := -e ".[dev,test]"
BENCH_EXTRAS := -e ".[dev,test,bench]"
INSTALL = if command -v uv >/dev/null 2>&1; then uv pip install --quiet --compile-bytecode --python $(BIN)/python $(1); \
	elif $(BIN)/python -m uv --version >/dev/null 2>&1; then $(BIN)/python -m uv pip install --quiet --compile-bytecode --python $(BIN)/python $(1); \
	else $(BIN)/python -m pip install --quiet $(1); fi

$(BIN)/python:
	@echo "Creating $(VENV) and installing (first run only)…"
	@if command -v uv >/dev/null 2>&1; then uv venv --quiet --python $(PYTHON) $(VENV); \
	else $(PYTHON) -m venv --without-pip $(VENV) \
	  && { $(PYTHON) -m pip --python $(BIN)/python install --quiet --disable-pip-version-check uv==$(UV_VERSION) 2>/dev/null \
	    || { $(BIN)/python -m ensurepip --upgrade --default-pip >/dev/null \
	      && $(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION) 2>/dev/null || true; }; }; fi

$(STAMP): pyproject.toml | $(BIN)/python
	@$(call INSTALL,$(DEV_EXTRAS))
	@touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	@echo "Installing the test tools…"
	@$(call INSTALL,$(TEST_EXTRAS))
	@touch $(TEST_STAMP)

## make dev: the playground (local Slack sandbox + bot + embedded PostgreSQL), no accounts or keys needed
dev: $(STAMP)
	@$(BIN)/python -m bot dev

## make test: install everything and run the whole suite
test: $(TEST_STAMP)
	$(BIN)/ruff check bot graphs tests bench
	$(BIN)/mypy
	$(BIN)/pytest

## make faults: the fault suite (kill -9, PostgreSQL outages, Slack faults, fuzzing); see docs/reliability.md
faults: $(TEST_STAMP)
	$(BIN)/pytest -m faults tests/faults

## make pictures: rewrite the screenshots under docs/ from the browser tests
pictures: $(TEST_STAMP)
	UPDATE_DOCS_PICTURES=1 $(BIN)/pytest tests/browser

$(BENCH_STAMP): $(TEST_STAMP)
	$(call INSTALL,$(BENCH_EXTRAS))
	touch $(BENCH_STAMP)

## make bench: the bot against the bare graph; rewrites docs/benchmarks.md and docs/benchmarks/*.png
## (ARGS=--quick for a short run; PostgreSQL from DATABASE_URL or TEST_DATABASE_URL, else an embedded one)
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench $(ARGS)

lint: $(TEST_STAMP)
	$(BIN)/ruff check bot graphs tests bench
	$(BIN)/ruff format --check bot graphs tests bench
	$(BIN)/mypy

serve: $(STAMP)
	$(BIN)/python -m bot serve

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
