# The course kit's two commands: `make lab` opens the course, `make test` runs every test
# and notebook. Both first set up .venv (idempotent). Windows without make: see README.md.
SHELL := /bin/bash
PYTHON ?= $(shell for p in python3.11 python3.12 python3.10 python3; do command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(not (3,10) <= sys.version_info[:2] <= (3,12))' && echo $$p && break; done)
VENV ?= .venv
BIN := $(VENV)/bin
JUPYTER ?= $(BIN)/jupyter
PORT ?= 8888
BROWSER ?= yes            # BROWSER=no: serve without opening a browser (remote machines)
LAB_ARGS ?=
NOTEBOOKS ?= course labs/solutions labs
PYTEST_ARGS ?=

.PHONY: setup lab serve-lab test unit notebooks browser-deps slides report lint clean

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python 3.10-3.12 is needed (python3.11 recommended)."; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

setup: $(VENV)/.installed
	$(BIN)/python -m infralab fetch
	$(BIN)/python -m infralab build-models

# The server's root is the repository (so course/ and labs/ are both visible and every
# lesson's ../labs/ link resolves); the browser opens lesson 00. .jupyter/ holds the course's
# Jupyter settings (news pop-up off); Binder reads the same folder through ./start.
lab: setup
	@$(MAKE) --no-print-directory serve-lab

# serve-lab: the server alone, without set-up (the test of `make lab` runs it).
serve-lab:
	JUPYTER_CONFIG_PATH="$(CURDIR)/.jupyter$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
	$(JUPYTER) lab --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/course/00_start_here.ipynb --port=$(PORT) $(if $(filter no,$(strip $(BROWSER))),--no-browser,) $(if $(filter 0,$(shell id -u)),--allow-root,) $(LAB_ARGS)

# Headless Chromium for the dashboard's real-browser test (Debian/Ubuntu, as root).
# Elsewhere the browser test skips and says why.
browser-deps:
	@if [ -x /usr/bin/chromium ]; then echo "chromium: present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
	    && echo "chromium: installed"; } || echo "WARNING: chromium could not be installed; the browser test will skip"; \
	else echo "chromium: not installed (needs root and apt-get); the browser test will skip"; fi

unit: setup browser-deps
	$(BIN)/python -m pytest -p no:cacheprovider tests $(PYTEST_ARGS)

notebooks: setup
	$(BIN)/python -m infralab build-labs --check
	$(BIN)/python -m pytest -p no:cacheprovider --nbval-lax --nbval-current-env --nbval-cell-timeout=300 $(NOTEBOOKS) $(PYTEST_ARGS)

slides: setup
	$(BIN)/python -m infralab slides --out artifacts/slides

test: unit notebooks slides

report: setup
	$(BIN)/python -m infralab report-notebooks --out artifacts/notebook_report.csv

lint: $(VENV)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) artifacts .pytest_cache
