# The course kit's two commands: `make lab` opens the course, `make test` runs every test
# and notebook. Both first set up .venv (idempotent). Windows without make: see README.md.
SHELL := /bin/bash
# Python 3.10-3.14 are accepted; 3.11 and 3.12 are preferred (3.11 and 3.13 are the versions tested).
PYTHON ?= $(shell for p in python3.11 python3.12 python3.13 python3.14 python3.10 python3; do command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(not (3,10) <= sys.version_info[:2] <= (3,14))' 2>/dev/null && echo $$p && break; done)
VENV ?= .venv
BIN := $(VENV)/bin
JUPYTER ?= $(BIN)/jupyter
PORT ?= 8888
BROWSER ?= yes            # BROWSER=no: serve without opening a browser (remote machines)
LAB_ARGS ?=
# The student release (python -m infralab release) has no labs/solutions/ and no tests/.
NOTEBOOKS ?= course $(wildcard labs/solutions) labs docs/class_dashboard.ipynb
NO_TESTS := echo "no tests/ here: this is the student release (the instructor's branch has the suite)"
PYTEST_ARGS ?=
# Versions the suite last passed with (make constraints), applied on the platform they were
# frozen on; elsewhere the ranges in pyproject.toml decide. CONSTRAINTS= turns them off.
CONSTRAINTS ?= $(if $(filter Linux x86_64,$(shell uname -sm 2>/dev/null)),constraints.txt,)
QUICK_MARKERS ?= not slow and not browser and not notebook
# The tests run in one pytest-xdist worker per core (many wait on kernels, servers, browsers
# and the grader's time limits), each test file in one worker (tests/conftest.py says why).
# XDIST= runs them in one process.
XDIST ?= -n auto --dist loadfile

.PHONY: setup lab serve-lab test test-quick unit notebooks browser-deps hub-deps db-deps grade-deps slides-deps slides report lint constraints clean site site-check

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python 3.10-3.14 is needed (python3.11 or 3.12 recommended)."; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e '.[dev]'
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
# Elsewhere the browser test skips and says why (under CI that skip fails the run unless
# INFRALAB_NO_SKIP_EXCEPT=chromium allows it: see tests/conftest.py).
browser-deps:
	@if [ -x /usr/bin/chromium ]; then echo "chromium: present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
	    && echo "chromium: installed"; } || echo "WARNING: chromium could not be installed; the browser test will skip"; \
	else echo "chromium: not installed (needs root and apt-get); the browser test will skip"; fi

# configurable-http-proxy (npm) for the local-hub test; without npm the test skips and says why.
CHP := .hub/node_modules/.bin/configurable-http-proxy
$(CHP):
	@if command -v npm >/dev/null; then npm install --silent --prefix .hub configurable-http-proxy@^4.6; \
	else echo "npm not found: the local JupyterHub test will skip"; fi

hub-deps: $(CHP)

# reveal.js (npm) for the slide decks, copied next to them so they present offline (no CDN);
# without npm, `make slides` stops and says so.
REVEAL := .slides/node_modules/reveal.js/dist/reveal.js
$(REVEAL):
	@if command -v npm >/dev/null; then npm install --silent --prefix .slides reveal.js@^5; \
	else echo "npm not found: the slide export (and its test) needs reveal.js: install Node.js"; fi

slides-deps: $(REVEAL)

# A PostgreSQL server for the collector's Postgres test (apt's postgresql, started per test run
# in a temporary folder); without it the test skips and says why.
db-deps:
	@if command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then echo "postgresql: present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null \
	    && echo "postgresql: installed"; } || echo "WARNING: postgresql could not be installed; the Postgres test will skip"; \
	else echo "postgresql: not installed (needs root and apt-get); the Postgres test will skip"; fi

# bubblewrap walls each graded notebook off (infralab/tooling/grading/sandbox.py); without it the
# grader refuses, and the grading tests skip and say why (a failure under CI's strict skips).
grade-deps:
	@if command -v bwrap >/dev/null; then echo "bubblewrap: present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null \
	    && echo "bubblewrap: installed"; } || echo "WARNING: bubblewrap could not be installed; grading tests will skip"; \
	else echo "bubblewrap: not installed (needs root and apt-get); grading tests will skip"; fi

unit: setup browser-deps hub-deps db-deps grade-deps slides-deps
	$(if $(wildcard tests),$(BIN)/python -m pytest -p no:cacheprovider $(XDIST) tests $(UNIT_ARGS) $(PYTEST_ARGS),@$(NO_TESTS))

# nbval's run is kept: each notebook whose every cell passed is written, executed, to
# artifacts/executed/ (infralab/tooling/nbval_record.py); `make site` and the thread test read those
# copies instead of running the notebooks again (a stale or missing copy is run there).
notebooks: setup
	$(if $(wildcard labs/solutions),$(BIN)/python -m infralab build-labs --check,@echo "no labs/solutions here: build-labs --check is for the instructor's branch")
	$(BIN)/python -m pytest -p no:cacheprovider -p infralab.tooling.nbval_record --executed-dir artifacts/executed --nbval-lax --nbval-current-env --nbval-cell-timeout=300 $(NOTEBOOKS) $(PYTEST_ARGS)

slides: setup slides-deps
	$(BIN)/python -m infralab slides --out artifacts/slides

# The full gate: lint first (cheap), then every notebook once (nbval, keeping the executed
# copies), the tests (the thread test reads those copies), the slide export and the site
# (rendered from the same copies).
test: lint notebooks unit slides site-check
# Within `make test` the site tests run once, against the full build (site-check).
test: UNIT_ARGS = --ignore=tests/test_site.py

# The inner loop: unit tests without slow, browser and notebook tests (84 s on 2 cores).
test-quick: setup
	$(if $(wildcard tests),$(BIN)/python -m pytest -p no:cacheprovider $(XDIST) -m "$(QUICK_MARKERS)" tests $(PYTEST_ARGS),@$(NO_TESTS))

# Every lesson and solution lab, executed once, as static HTML with outputs (no CDN needed):
# artifacts/site/index.html. It renders the copies `make notebooks` left in artifacts/executed
# where they are fresh and runs the rest (a few minutes when it runs every notebook).
site: setup
	$(BIN)/python -m infralab.tooling.site --out artifacts/site

# The whole built site in headless Chromium: every page loads offline, every chart renders,
# the table of contents reaches every notebook (tests/test_site.py, pointed at the build).
site-check: site browser-deps
	$(if $(wildcard tests),INFRALAB_SITE_DIR="$(CURDIR)/artifacts/site" $(BIN)/python -m pytest -p no:cacheprovider tests/test_site.py $(PYTEST_ARGS),@$(NO_TESTS))

report: setup
	$(BIN)/python -m infralab report-notebooks --out artifacts/notebook_report.csv

lint: $(VENV)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports && $(BIN)/python scripts/import_graph.py --check

# After a green `make test`: pin what the suite passed with (see CONTRIBUTING.md).
constraints: $(VENV)/.installed
	$(BIN)/python scripts/refresh_constraints.py > constraints.txt.new && mv constraints.txt.new constraints.txt
	@echo "constraints.txt refreshed from $(VENV); commit it with the change that needed it."

clean:
	rm -rf $(VENV) artifacts .pytest_cache
