# SLA portal. `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: help run test lint fmt migrate seed worker beat web bench clean

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

run: seed ## Serve the portal at http://127.0.0.1:8000 with a Celery worker and beat (Ctrl-C stops all)
	bash scripts/run.sh

test: $(VENV)/.installed ## Run the whole test suite (SQLite by default; PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed ## ruff (with the DJ and DTZ rule sets)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: $(VENV)/.installed ## Format the code
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(VENV)/.installed ## Benchmarks (print figures beside a baseline measured in the same run; close_month needs PostgreSQL)
	$(PY) bench/clock.py
	DATABASE_URL=$${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/sla_bench} $(PY) bench/close_month.py

clean: ## Remove the embedded state (SQLite, broker, mail) under var/
	rm -rf var/
