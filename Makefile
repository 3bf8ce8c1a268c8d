# Switchyard: `make dev` runs the whole stack, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test bench chaos lint services tools clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

dev: $(STAMP)
	$(BIN)/switchyard dev

services:
	bash scripts/ensure-services

# docker-compose (Debian's package) parses docker-compose.yml in tests/integration/test_compose.py.
tools:
	@command -v docker-compose >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "make: installing docker-compose for the compose file test"; \
	    apt-get install -y -q docker-compose >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null && apt-get install -y -q docker-compose >/dev/null; }; \
	  else \
	    echo "make: the compose test needs docker-compose: apt-get install docker-compose" >&2; \
	  fi; }

test: $(STAMP) services tools
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

bench: $(STAMP) services
	$(BIN)/python -m bench.intake
	$(BIN)/python -m bench.drain
	$(BIN)/python -m bench.enqueue
	$(BIN)/python -m bench.latency
	$(BIN)/python -m bench.notifications
	$(BIN)/python -m bench.ledger
	$(BIN)/python -m bench.payments
	$(BIN)/python -m bench.recon
	$(BIN)/python -m bench.iot_ingest
	$(BIN)/python -m bench.iot_aggregate
	$(BIN)/python -m bench.iot_derived

# The chaos battery (not part of `make test`): its own PostgreSQL and Redis, the whole stack,
# a mixed load under a fault schedule, then the invariant table; exits 1 if one fails.
# Bounded at 10 minutes by itself; `timeout` is the backstop (SIGTERM still tears down).
chaos: $(STAMP)
	timeout --kill-after=30 630 $(BIN)/python -m chaos

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
