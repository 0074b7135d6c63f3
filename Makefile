# Every target sets itself up from a fresh clone and is safe to run twice.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_STAMP := $(VENV)/.demo-installed-stamp
BENCH_STAMP := $(VENV)/.bench-installed-stamp
DIST_STAMP := $(VENV)/.dist-installed-stamp
E2E_STAMP := $(VENV)/.e2e-installed-stamp
MUTATION_STAMP := $(VENV)/.mutation-installed-stamp
PIP_VERSION := 26.3

.PHONY: install test lint unit demo demo-migration bench bench-ledger constraints clean dist matrix e2e mutation ui

install: $(STAMP)

# The demos need Airflow, the SQLite provider and this package: no system packages, no test tools.
$(DEMO_STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check "pip==$(PIP_VERSION)"
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e ".[demo]"
	touch $(DEMO_STAMP)

# Everything else: the demo's install, plus the MySQL driver's headers, the test and lint tools.
$(STAMP): $(DEMO_STAMP) pyproject.toml constraints.txt scripts/ensure-system-packages.sh
	scripts/ensure-system-packages.sh
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e ".[test,openlineage]"
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# The inner loop: tests/unit only (no Airflow run, database or network), seconds.
unit: $(STAMP)
	$(BIN)/pytest tests/unit

demo: $(DEMO_STAMP)
	$(BIN)/python scripts/demo.py

demo-migration: $(DEMO_STAMP)
	$(BIN)/python scripts/demo_migration.py

# The Airflow UI with the example DAGs, the sandbox, a seeded SQLite source and their connections,
# on a free port (or UI_PORT=8080) until Ctrl-C; prints the URL, the login and what to try.
ui: $(STAMP)
	UI_PORT=$(UI_PORT) $(BIN)/python -m scripts.ui

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e ".[test,openlineage,bench]"
	touch $(BENCH_STAMP)

# Every approach x source x size x latency, the jittered and task-runner suites; about 35 minutes.
# Writes docs/benchmark.{md,json,png} and benchmark-jitter.png; fails when task-runner memory grows.
bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

bench-ledger: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.ledger_rerun

$(DIST_STAMP): $(STAMP)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt build twine
	touch $(DIST_STAMP)

# sdist and wheel in dist/, checked by twine (metadata and README rendering).
dist: $(DIST_STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist . >/dev/null
	$(BIN)/twine check --strict dist/*

# The test suite against the built wheel on every Airflow 3 line (or MATRIX_LINES="3.0 3.3").
# Each line's virtualenv is kept in .matrix/ and reused while the wheel is unchanged.
matrix: dist
	$(BIN)/python scripts/matrix.py dist/*.whl $(MATRIX_LINES)

$(E2E_STAMP): $(STAMP) scripts/ensure-chromium.sh
	scripts/ensure-chromium.sh
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e ".[test,openlineage,e2e]"
	touch $(E2E_STAMP)

# Real deployments (LocalExecutor, then CeleryExecutor with two workers) driven as users do, then
# make ui in headless Chromium; E2E_SCENARIOS="local" runs one. Needs Redis on 127.0.0.1:6379 for
# Celery. Writes docs/e2e.md and the UI screenshots in docs/.
e2e: $(E2E_STAMP)
	$(BIN)/python -m e2e.run $(E2E_SCENARIOS)

$(MUTATION_STAMP): $(STAMP)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e ".[test,openlineage,mutation]"
	touch $(MUTATION_STAMP)

# Mutation testing of the pure modules and the hook against their fast tests (mutmut, config in
# pyproject.toml); prints the score per module and every mutant not killed. Not in CI: about 30
# minutes on 2 cores. Record the score and the survivors' reasons in docs/mutation.md.
mutation: $(MUTATION_STAMP)
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2 >/dev/null || true
	$(BIN)/python scripts/mutation_report.py

constraints: $(STAMP)
	{ head -2 constraints.txt; $(BIN)/pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) .airflow .demo .bench .matrix .e2e .ui dist mutants
