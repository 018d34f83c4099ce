# RecStack: `make run` and `make test` are the two set-up commands (each installs first).
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
# pip prints a warning per missing local index folder; drop those lines, keep pip's exit status.
QUIET := { grep -v "^WARNING: Location" || true; }
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export RECSTACK_HOME ?= $(CURDIR)/.recstack
export DAGSTER_HOME ?= $(RECSTACK_HOME)/dagster
export PYTHONUNBUFFERED := 1
# The process defaults (gRPC fork support off, telemetry off, Spark on loopback), stated once in
# recstack/settings.py; exported here too for the CLIs that start before any RecStack code runs.
$(foreach kv,$(shell python3 recstack/settings.py),$(eval export $(subst =, ?= ,$(kv))))

.PHONY: install run test test-fast lint docs docs-check ui serve realtime bench validate clean constraints system-deps mutation

install: $(STAMP)

# Re-installs only when the pins change. torch first: the CPU build of exactly 2.13.0 (an
# unpinned resolve would pull CUDA wheels).
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade "pip==25.3" "setuptools==84.2.1" "wheel==0.48.0" 2>&1 | $(QUIET)
	$(BIN)/pip install -q --disable-pip-version-check "torch==2.13.0" 2>&1 | $(QUIET)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]' 2>&1 | $(QUIET)
	$(BIN)/python -c "import torch, dagster, pyspark, faiss, mlflow, great_expectations, lightgbm"
	@touch $(STAMP)

$(DAGSTER_HOME)/dagster.yaml:
	@mkdir -p $(DAGSTER_HOME)
	@printf 'telemetry:\n  enabled: false\n' > $@

run: install $(DAGSTER_HOME)/dagster.yaml
	@time $(BIN)/python -m orchestration.run_local

test: install lint docs-check system-deps
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check -q .

# docs/benchmarks.md is generated from benchmarks/results/*.json; the site builds strictly (links checked).
docs: install
	$(BIN)/python -m benchmarks.report
	$(BIN)/mkdocs build --strict -q

docs-check: install
	$(BIN)/python -m benchmarks.report --check
	$(BIN)/mkdocs build --strict -q

# PostgreSQL and Chromium from Debian, for the production rehearsal and the UI tests (skips itself
# where apt cannot run; those tests then skip with the reason).
system-deps:
	@bash .ci/system-deps.sh

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

validate: install
	$(BIN)/dagster definitions validate -w workspace.yaml

# Dagster UI on :3000 and the MLflow UI on :5000, both over the same local state.
ui: install $(DAGSTER_HOME)/dagster.yaml
	@mkdir -p $(RECSTACK_HOME)/mlflow
	$(BIN)/mlflow ui --host 127.0.0.1 --port 5000 \
		--backend-store-uri sqlite:///$(RECSTACK_HOME)/mlflow/mlflow.db \
		--default-artifact-root $(RECSTACK_HOME)/mlflow/artifacts & \
	trap "kill $$! 2>/dev/null" EXIT; \
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# The recall API on 127.0.0.1:8000 (docs at /docs) over the local registry and store (run `make run` first).
serve: install
	$(BIN)/uvicorn serving.app:app --host 127.0.0.1 --port 8000

# The real-time DWD writer (Spark Structured Streaming) over $(RECSTACK_HOME)/landing/events, until stopped.
realtime: install
	$(BIN)/python -m orchestration.realtime

bench: install
	$(BIN)/python -m benchmarks.run_all
	$(BIN)/python -m benchmarks.report

# Mutation testing of the core pure modules ([tool.mutmut] in pyproject.toml); not part of `make test`.
# Results: benchmarks/results/mutation.json (per module: mutants, killed, survived, survivors' names).
mutation: install
	$(BIN)/python -m benchmarks.mutation

# pip freeze writes `name @ file:///…` for a wheel installed from a local folder: .ci/pins.py
# rewrites such lines to name==version (and says which) and the check refuses anything else.
constraints: install
	$(BIN)/python .ci/pins.py freeze $(BIN)/pip > constraints.txt.new
	mv constraints.txt.new constraints.txt
	$(BIN)/python .ci/pins.py check

clean:
	rm -rf $(RECSTACK_HOME) .pytest_cache spark-warehouse metastore_db derby.log mutants
