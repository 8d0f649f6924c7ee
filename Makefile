# The two commands of README.md: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
# Daphne processes on PORT (bin/run: more than 1 runs them under supervisord, deploy/supervisord.conf).
WEB_CONCURRENCY ?= 1

.PHONY: install run test lint fuzz bench bench-quick bench-requirements screenshots soak clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q --upgrade pip
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@

run: install
	PORT=$(PORT) WEB_CONCURRENCY=$(WEB_CONCURRENCY) VENV=$(VENV) bin/run

# The suite, against PostgreSQL and Redis on 127.0.0.1, or private ones bin/test starts when nothing listens there.
# PYTEST_ARGS: pytest's arguments (e.g. PYTEST_ARGS="tests/diquis -x" runs one folder).
PYTEST_ARGS ?=
test: install
	$(BIN)/lint-imports
	$(BIN)/python bin/test $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# Benchmarks on the real stack; bench/RESULTS.md (`bench-quick`: under two minutes, var/bench-quick.md).
# Override DATABASE_URL / REDIS_URL / DIQUIS_TENANT_DATABASE_PREFIX to point them elsewhere (names must say "bench").
# Charts beside it (bench/charts/, from the raw series in bench/data/; `python -m bench.charts` redraws them):
# matplotlib, from the bench's own requirements.
bench: bench-requirements
	$(BIN)/python -m bench

bench-quick: bench-requirements
	$(BIN)/python -m bench --quick

bench-requirements: install
	$(BIN)/pip install --disable-pip-version-check -q -r bench/requirements.txt

# The README's screenshots (docs/images/), taken by the admin's browser test from a real run.
screenshots: install
	$(BIN)/pip install --disable-pip-version-check -q -r docs/requirements.txt
	DIQUIS_SCREENSHOTS_DIR=$(CURDIR)/docs/images $(BIN)/python bin/test tests/e2e/test_browser_admin.py

# The API fuzzed against its own OpenAPI schema at length, with a fresh seed (`make test` runs a short,
# seeded version). FUZZ_EXAMPLES: cases per operation and phase.
FUZZ_EXAMPLES ?= 200
fuzz: install
	DIQUIS_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) DIQUIS_FUZZ_SEED=random $(BIN)/pytest -s tests/e2e/test_fuzz_api.py

# The fault soak (issue 16) on private servers of its own: mixed operations under random crashes, outages and
# freezes, then its invariants; bench/SOAK.md. SOAK_SEED replays a run (the report names its seed).
SOAK_MINUTES ?= 30
SOAK_SEED ?=
soak: install
	SOAK_MINUTES=$(SOAK_MINUTES) SOAK_SEED=$(SOAK_SEED) $(BIN)/python -m tests.support.soak

clean:
	rm -rf $(VENV) var .pytest_cache
