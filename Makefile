# lmforge — the two commands on a fresh machine are `make demo` and `make test`; both run setup when needed.
#
#   make demo    the whole lifecycle on a real local site: crawl to a served, audited champion (tiny preset)
#   make test    the whole test suite (CI runs this through .ci/run)
#   make ui      Dagster web UI (http://127.0.0.1:3000) and MLflow UI (http://127.0.0.1:5000)
#   make bench   benchmarks against their baselines, tables printed, JSON under $(LMFORGE_HOME)/bench
#   make setup   virtualenv + pinned install + home layout (idempotent)

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lmforge-installed
export LMFORGE_HOME ?= $(CURDIR)/.lmforge
export DAGSTER_HOME ?= $(LMFORGE_HOME)/dagster
export HF_HUB_OFFLINE := 1

.PHONY: setup demo ui test bench lint clean

setup: $(STAMP)
	@$(VENV)/bin/lmforge init >/dev/null

$(STAMP): pyproject.toml constraints.txt scripts/setup.sh
	bash scripts/setup.sh $(VENV)
	@touch $(STAMP)

demo: setup
	$(VENV)/bin/lmforge demo

ui: setup
	$(VENV)/bin/lmforge ui

test: setup
	$(VENV)/bin/pytest -q

bench: setup
	$(PY) -m bench.extract --json $(LMFORGE_HOME)/bench/extract.json
	$(PY) -m bench.dedupe --json $(LMFORGE_HOME)/bench/dedupe.json
	$(PY) -m bench.data_engines --json $(LMFORGE_HOME)/bench/data_engines.json
	$(VENV)/bin/pip install -q -c constraints.txt -e '.[filters-compare]'
	$(PY) -m bench.filters --json $(LMFORGE_HOME)/bench/filters.json
	$(PY) -m bench.tokenize --json $(LMFORGE_HOME)/bench/tokenize.json
	$(PY) -m bench.pretrain --json $(LMFORGE_HOME)/bench/pretrain.json
	$(PY) -m bench.launches --json $(LMFORGE_HOME)/bench/launches.json
	$(PY) -m bench.serve --json $(LMFORGE_HOME)/bench/serve.json
	$(PY) -m bench.speculative --json $(LMFORGE_HOME)/bench/speculative.json
	$(PY) -m bench.nightly --json $(LMFORGE_HOME)/bench/nightly.json

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf $(LMFORGE_HOME)
