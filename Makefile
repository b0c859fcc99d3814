# Config Ledger - the two commands: `make run` (the whole system) and `make test` (the whole suite).
# Both create or refresh .venv themselves; a fresh machine needs only Python 3.11 and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: run test bench lint venv test-faults-long test-fuzz-long clean browser

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

## make run: embedded NATS + PostgreSQL, streams, migrations, projector, API on :7000
run: $(STAMP)
	$(BIN)/config-ledger up

## the console's browser tests drive Debian's chromium + chromium-driver: installed when missing
## and apt is usable (root); otherwise those tests skip with the command to run (fail under CI=1)
browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver \
	      || echo "could not install chromium chromium-driver: the console's browser tests will skip"; \
	  else echo "chromium/chromium-driver missing (install them as root): the console's browser tests will skip"; fi; \
	fi

## make test: the whole suite (unit, integration with private servers, CI-sized faults)
test: $(STAMP) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make bench: benchmarks, each beside a baseline measured in the same run (JSON in bench/results)
bench: $(STAMP)
	$(BIN)/python -m bench

## the fault-injection scenarios at ten times the CI size
test-faults-long: $(STAMP)
	FAULTS_SCALE=10 $(BIN)/python -m pytest tests/faults $(PYTEST_ARGS)

## schemathesis against the running API at twenty times the CI size (about half an hour)
test-fuzz-long: $(STAMP)
	API_FUZZ_EXAMPLES=500 API_FUZZ_SECONDS=1800 $(BIN)/python -m pytest tests/api/test_contract.py $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy ledger projector api client infra_config

clean:
	rm -rf $(VENV) .ledger-data .pytest_cache .hypothesis
