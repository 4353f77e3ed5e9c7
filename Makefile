# Two commands do everything: `make run` (demo on SQLite) and `make test` (the whole suite).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
PORT ?= 8000

# Find a Python >= 3.12 that actually runs (a pyenv shim on PATH may exist and still fail).
define FIND_PYTHON
for c in "$(PYTHON)" python3.13 python3.12 python3.14 \
         $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.1[2-9]*/bin/python 2>/dev/null | sort -rV) python3; do \
  [ -n "$$c" ] || continue; \
  if "$$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; then \
    echo "$$c"; exit 0; fi; \
done; exit 1
endef

.PHONY: run test install install-dev migrate demo lint clean

$(PY):
	@py=$$($(FIND_PYTHON)) || { \
	  echo "No Python 3.12 or newer found. Install one (e.g. 'pyenv install 3.13' or your"; \
	  echo "distribution's python3.12 package), or point to it: make run PYTHON=/path/to/python3.12"; \
	  exit 1; }; \
	echo "Using $$py ($$("$$py" -c 'import sys; print(sys.version.split()[0])'))"; \
	"$$py" -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	@touch $@

$(DEV_STAMP): pyproject.toml $(STAMP)
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

install: $(STAMP)
install-dev: $(DEV_STAMP)

migrate: install
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py seed_demo

run: demo
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

test: install-dev
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) db.sqlite3 .pytest_cache
