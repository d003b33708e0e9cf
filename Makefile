# `make run` serves the platform at http://127.0.0.1:$(PORT); `make test` runs the suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run fleet test test-fast install neural models lint format migrate worker scheduler

# The S3 extras too: the tests run the storage on a SeaweedFS of their own.
$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-s3.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt -r requirements-s3.txt
	touch $@

install: $(VENV)/.installed

# The demucs engine's extras (PyTorch, demucs); `make test` installs them so CI tests that path.
$(VENV)/.neural: $(VENV)/.installed requirements-neural.txt
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-neural.txt
	touch $@

neural: $(VENV)/.neural

# Downloads the official Demucs checkpoints into BTRO_MODEL_DIR (needs internet).
models: neural
	$(PY) manage.py fetch_models

migrate: install
	$(PY) manage.py migrate --noinput -v0

run: migrate
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py serve 127.0.0.1:$(PORT)

# The production shape on one machine: deploy/fleet/Procfile run by honcho (gunicorn, workers
# by queue, the scheduler, a SeaweedFS) on this machine's PostgreSQL, RabbitMQ and Redis, as
# deploy/fleet/fleet.env names them. FLEET_ENV=deploy/fleet/fleet.env,mine.env overrides some.
FLEET_ENV ?= deploy/fleet/fleet.env
HONCHO := $(VENV)/bin/honcho -e $(FLEET_ENV) -f deploy/fleet/Procfile

$(VENV)/.fleet: $(VENV)/.installed requirements-fleet.txt
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-fleet.txt
	touch $@

fleet: $(VENV)/.fleet
	mkdir -p var/fleet/metrics var/fleet/weed
	$(HONCHO) run sh -c 'psql "$$DATABASE_URL" -qAtc "" 2>/dev/null || \
	  createdb --maintenance-db="$${DATABASE_URL%/*}/postgres" "$${DATABASE_URL##*/}"'
	$(HONCHO) run $(PY) manage.py migrate --noinput -v0
	$(HONCHO) run $(PY) manage.py collectstatic --noinput -v0
	rm -rf var/fleet/metrics && mkdir var/fleet/metrics  # the last run's processes' counts
	$(HONCHO) start -p $(PORT)

test: install neural
	$(VENV)/bin/pytest

# For quick loops: leaves out the tests that need PyTorch (neural) or Chromium (browser).
test-fast: install
	$(VENV)/bin/pytest -m "not neural and not browser"

worker: install
	$(PY) manage.py rundramatiq --processes 1 --threads 1

scheduler: install
	$(PY) manage.py scheduler

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	cd clients/python && ../../$(VENV)/bin/mypy  # the SDK, strict (its pyproject.toml)

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
