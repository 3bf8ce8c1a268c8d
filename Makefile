# Switchyard: `make dev` runs the whole stack, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test bench lint services clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

dev: $(STAMP)
	$(BIN)/switchyard dev

services:
	bash scripts/ensure-services

test: $(STAMP) services
	$(BIN)/ruff check .
	$(BIN)/pytest

bench: $(STAMP) services
	$(BIN)/python -m bench.intake
	$(BIN)/python -m bench.drain

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
