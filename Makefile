# SLA portal. `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
# make test's processes (pytest-xdist): one per core of the 2-core CI machine; 0 runs in this one.
TEST_WORKERS ?= 2

.PHONY: help install migrate seed run test lint fmt bench drill clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed ## Create .venv and install requirements.txt

migrate: $(VENV)/.installed ## Apply migrations (installs the SLA templates)
	$(PY) manage.py migrate --noinput

seed: migrate ## Load the demo data (idempotent)
	$(PY) manage.py seed_demo

run: migrate ## Load the demo data and serve the portal at http://127.0.0.1:8000 with Celery workers (general and clocks) and beat (Ctrl-C stops all)
	bash scripts/run.sh

test: $(VENV)/.installed ## Run the whole test suite on TEST_WORKERS processes (SQLite by default; PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: $(VENV)/.installed ## ruff (with the DJ and DTZ rule sets) and the import layers (lint-imports)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

fmt: $(VENV)/.installed ## Format the code
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(VENV)/.installed ## Benchmarks beside the peer, django-helpdesk (PostgreSQL; bench/run.py; installs wrk if missing)
	command -v wrk >/dev/null || apt-get install -y -qq wrk || (apt-get update -qq && apt-get install -y -qq wrk)
	$(PY) bench/run.py

drill: $(VENV)/.installed ## Crash drills, the long ones too: real worker, beat, Redis, PostgreSQL and SMTP killed and restarted (own throwaway servers)
	$(PY) -m pytest tests/drills -m drill $(PYTEST_ARGS)

clean: ## Remove the embedded state (SQLite, broker, mail) under var/
	rm -rf var/
