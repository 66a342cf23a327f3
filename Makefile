# The two commands a new user runs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo demo-redis test lint docs bench bench-core bench-scan bench-redis system-deps vendor clean help
.DEFAULT_GOAL := help

help:
	@echo "make demo        serve the demo site on http://127.0.0.1:8000 (daphne, in-process bus)"
	@echo "make demo-redis  the demo on two daphne processes (ports 8000, 8001) sharing Redis"
	@echo "make test        lint, type-check, build the docs and run the whole suite"
	@echo "make bench       fan-out end to end against django-eventstream; tracked saves"
	@echo "make bench-core  print the core engine's benchmark figures"
	@echo "make bench-scan  print the start-up template scan's figures"
	@echo "make bench-redis print the Redis bus's cross-process figures"
	@echo "make docs        build the documentation into site/"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[demo]'
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.demo-installed
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python manage.py seed_demo
	@echo ""
	@echo "Serving the demo on http://127.0.0.1:8000/ (Ctrl-C stops it)."
	@echo "Log in as alice / alice-demo in one window and bob / bob-demo in another"
	@echo "(a private one), open the same document, and edit it."
	@echo "To watch someone else edit: .venv/bin/python manage.py demo_activity"
	@echo ""
	$(BIN)/daphne -b 127.0.0.1 -p 8000 demo_project.asgi:application

$(VENV)/.demo-redis-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[demo,redis]'
	touch $@

demo-redis: $(VENV)/.demo-redis-installed
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python manage.py seed_demo
	$(BIN)/python demo_project/cluster.py

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy reactive_blocks

docs: $(VENV)/.dev-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# What the tests need from Debian: redis-server for the Redis bus, Chromium for the
# browser tests. Under CI (CI=true) a missing one is an error, not a skip.
SYSTEM_PACKAGES := redis-server:redis-server chromium:chromium

system-deps:
	@missing=""; for entry in $(SYSTEM_PACKAGES); do \
	  command -v "$${entry%%:*}" >/dev/null 2>&1 || missing="$$missing $${entry#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's$$missing for the tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing >/dev/null; \
	  elif [ "$$CI" = true ]; then \
	    echo "$$missing missing and cannot be installed here" >&2; exit 1; \
	  else \
	    echo "$$missing missing and cannot be installed here: those tests will skip"; \
	  fi; \
	fi

test: lint system-deps
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir $(VENV)/docs-site
	$(BIN)/python -m pytest

bench-core: $(VENV)/.dev-installed
	$(BIN)/python bench/core.py

bench-scan: $(VENV)/.dev-installed
	$(BIN)/python bench/scan.py

$(VENV)/.bench-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/python bench/e2e.py
	$(BIN)/python bench/tracking.py
	$(BIN)/python bench/budget.py

bench-redis: $(VENV)/.bench-installed system-deps
	$(BIN)/python bench/redis.py

# Fetch the pinned htmx files again from the npm registry (see the vendor README).
vendor:
	rm -rf $(VENV)/npm && mkdir -p $(VENV)/npm
	cd $(VENV)/npm && npm pack --silent htmx.org@2.0.11 htmx-ext-sse@2.2.4 >/dev/null \
	  && tar xzf htmx.org-2.0.11.tgz && mv package htmx && tar xzf htmx-ext-sse-2.2.4.tgz && mv package sse
	cp $(VENV)/npm/htmx/dist/htmx.min.js reactive_blocks/static/reactive_blocks/vendor/htmx.min.js
	cp $(VENV)/npm/htmx/LICENSE reactive_blocks/static/reactive_blocks/vendor/htmx.LICENSE
	cp $(VENV)/npm/sse/sse.js reactive_blocks/static/reactive_blocks/vendor/htmx-ext-sse.js
	cp $(VENV)/npm/sse/LICENSE reactive_blocks/static/reactive_blocks/vendor/htmx-ext-sse.LICENSE

clean:
	rm -rf $(VENV) site demo_project/db.sqlite3
