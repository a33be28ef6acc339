# Two commands on a fresh clone: `make run` (set up and serve the admin) and `make test`.
#
# Both bootstrap the same way: create .venv (python3 -m venv) if missing, install the project
# with its dev tools when pyproject.toml changed since the last install (a hash in a stamp file
# under .venv), and write .env with freshly generated keys if it does not exist yet.
#
#   make run                  migrate, ensure an admin user, load and sync the demo, serve the
#                             admin on 127.0.0.1:8000 with a worker beside it
#   make run SERVE=0          the same without starting the server (CI, scripts)
#   make run PORT=8001        serve on another port
#   make test                 the test suite on SQLite
#   make test PYTEST_ARGS='-k crypto -x'
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/grouparoo make test
#   make soak MINUTES=30      the soak test (needs the local PostgreSQL; see docs/guarantees.md)
#   make lint                 ruff
#   make clean                caches and build artefacts (keeps .venv, .env and var/)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.grouparoo-installed
HOST ?= 127.0.0.1
PORT ?= 8000
SERVE ?= 1
PYTEST_ARGS ?=

.PHONY: help bootstrap venv setup run serve test bench soak lint clean

help:
	@echo "make run    set up (venv, .env, database, admin user, demo) and serve http://$(HOST):$(PORT)/admin/"
	@echo "make test   run the test suite (SQLite; set DATABASE_URL for PostgreSQL)"
	@echo "make bench  the benchmark (N=100000 REPEAT=3 SQLITE_N=100000; needs PostgreSQL)"
	@echo "make soak   the soak test (MINUTES=30; needs PostgreSQL)"
	@echo "make lint   ruff check"
	@echo "make clean  remove caches and build artefacts"

# The virtualenv, and the project installed into it. Reinstalls only when pyproject.toml changed.
venv:
	@if [ ! -x $(PY) ]; then \
		$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
			echo "Python 3.11 or newer is needed; '$(PYTHON)' is $$($(PYTHON) --version 2>&1)." \
			"Run: make run PYTHON=python3.11" >&2; exit 1; }; \
		echo ">> creating $(VENV) with $$($(PYTHON) --version)"; \
		$(PYTHON) -m venv $(VENV); \
	fi
	@want="$$(sha256sum pyproject.toml | cut -d' ' -f1)"; \
	if [ "$$(cat $(STAMP) 2>/dev/null)" != "$$want" ]; then \
		echo ">> installing the project and its dev tools into $(VENV) (pip install -e '.[dev]')"; \
		$(PY) -m pip install --quiet -e '.[dev]'; \
		echo "$$want" > $(STAMP); \
	fi

# Local settings with fresh secrets. Written once; the keys are never printed.
# FIELD_ENCRYPTION_KEYS holds one Fernet key (32 random bytes, url-safe base64, as
# Fernet.generate_key() makes them); losing it makes stored secret options unreadable.
.env:
	@$(PYTHON) -c 'import base64, os, secrets; \
	fd = os.open(".env", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600); \
	f = os.fdopen(fd, "w"); \
	f.write("# Local settings written by make. Keep this file secret and out of git.\n"); \
	f.write("# Encryption keys, newest first; see README (Secrets) before changing them.\n"); \
	f.write("SECRET_KEY=" + secrets.token_urlsafe(50) + "\n"); \
	f.write("FIELD_ENCRYPTION_KEYS=" + base64.urlsafe_b64encode(os.urandom(32)).decode() + "\n"); \
	f.write("DEBUG=true\n"); \
	f.close()'
	@echo ">> wrote .env with a new SECRET_KEY and encryption key (not shown)"

bootstrap: venv .env
	@mkdir -p var

# Everything `make run` does before serving; safe to repeat (each step is idempotent).
setup: bootstrap
	$(PY) manage.py migrate --noinput
	$(PY) manage.py ensure_admin
	$(PY) manage.py load_demo
	$(PY) manage.py run_schedule --all

# The admin and, beside it, a worker (django-q2: the minute clock, runs, export retries).
# The worker stops when the server does; its log is var/worker.log.
serve: bootstrap
	@echo ">> worker: manage.py qcluster (log: var/worker.log)"
	@echo ">> admin: http://$(HOST):$(PORT)/admin/  (Ctrl-C stops the server and the worker)"
	@$(PY) manage.py qcluster >> var/worker.log 2>&1 & worker=$$!; \
	stop_worker() { kill -TERM $$worker 2>/dev/null || return 0; \
		for _ in 1 2 3 4 5; do kill -0 $$worker 2>/dev/null || return 0; sleep 1; done; \
		kill -KILL $$worker 2>/dev/null || true; }; \
	trap stop_worker EXIT INT TERM; \
	$(PY) manage.py runserver --noreload $(HOST):$(PORT)

run: setup
	@if [ "$(SERVE)" = "0" ]; then \
		echo ">> SERVE=0: set up, not serving. Start the server with: make serve"; \
	else \
		$(MAKE) --no-print-directory serve HOST=$(HOST) PORT=$(PORT); \
	fi

test: bootstrap
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The benchmark (bench/harness.py): fresh PostgreSQL databases, N customers from the shared
# generator, full sync / floor / 1% incremental, checked against the floor; appends to
# bench/RESULTS.md. Needs the local PostgreSQL. `make bench N=2000 REPEAT=1 SQLITE_N=2000` is
# the CI smoke run.
N ?= 100000
REPEAT ?= 3
SQLITE_N ?= 100000
BENCH_ARGS ?=
bench: bootstrap
	$(PY) bench/harness.py --n $(N) --repeat $(REPEAT) --sqlite-n $(SQLITE_N) $(BENCH_ARGS)

# The soak test (manage.py soak, core/soak.py): MINUTES of recurring schedules with real workers
# against a mutating source and flaky webhook destinations, then a check that the destinations
# equal the source and nothing is stuck. Runs in a fresh PostgreSQL database (dropped and
# re-created each time); exits non-zero on any mismatch.
MINUTES ?= 30
SOAK_DB ?= grouparoo_soak
SOAK_SERVER ?= postgres://postgres@127.0.0.1:5432
soak: bootstrap
	$(PY) -c 'import psycopg; c = psycopg.connect("$(SOAK_SERVER)/postgres", autocommit=True); \
	c.execute("DROP DATABASE IF EXISTS $(SOAK_DB) WITH (FORCE)"); c.execute("CREATE DATABASE $(SOAK_DB)")'
	DATABASE_URL=$(SOAK_SERVER)/$(SOAK_DB) DEBUG=false Q_SYNC=false $(PY) manage.py migrate --noinput -v0
	DATABASE_URL=$(SOAK_SERVER)/$(SOAK_DB) DEBUG=false Q_SYNC=false $(PY) manage.py soak --minutes $(MINUTES) --workdir var/soak

lint: venv
	$(VENV)/bin/ruff check .

clean:
	find . -path ./.venv -prune -o -type d -name __pycache__ -print -exec rm -rf {} +
	rm -rf build *.egg-info .pytest_cache .ruff_cache
