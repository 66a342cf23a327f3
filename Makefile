# The two commands a new user runs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo demo-redis test test-latest test-oldest lint lock lock-upgrade docs bench \
	bench-core bench-scan bench-redis bench-profile soak system-deps vendor clean help
.DEFAULT_GOAL := help

help:
	@echo "make demo        serve the demo site on http://127.0.0.1:8000 (daphne, in-process bus)"
	@echo "make demo-redis  the demo on two daphne processes (ports 8000, 8001) sharing Redis"
	@echo "make test        lint, type-check, build the docs and run the whole suite"
	@echo "make test-latest the suite on the newest releases pyproject.toml allows (no lock)"
	@echo "make test-oldest the suite on the oldest Django, channels, daphne, redis-py allowed"
	@echo "make lock        resolve requirements/*.txt again (make lock-upgrade: newest pins)"
	@echo "make bench       fan-out end to end against django-eventstream; tracked saves"
	@echo "make bench-core  print the core engine's benchmark figures"
	@echo "make bench-scan  print the start-up template scan's figures"
	@echo "make bench-redis print the Redis bus's cross-process figures"
	@echo "make bench-profile  py-spy flame graphs of a change's fan-out (into profile/)"
	@echo "make soak        ten minutes of faults under load on three processes and Redis"
	@echo "make docs        build the documentation into site/"

# What gets installed: the lock (default), or for make test-latest / test-oldest the
# newest / oldest releases that pyproject.toml's ranges allow.
INSTALL ?= locked
ifneq ($(INSTALL),locked)
ifeq ($(VENV),.venv)
$(error INSTALL=$(INSTALL) would change .venv behind its lock: use make test-latest or make test-oldest)
endif
endif
UV_COMPILE := $(BIN)/uv pip compile --quiet --universal --generate-hashes \
	--python-version 3.11 --custom-compile-command "make lock" \
	pyproject.toml requirements/install.in

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The locks pin every package with its hashes, pip and setuptools included; the
# project itself is then installed editable, built without build isolation.
$(VENV)/.demo-installed: requirements/demo.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/demo.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.dev-installed: requirements/dev.txt pyproject.toml | $(BIN)/python
ifeq ($(INSTALL),locked)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
else ifeq ($(INSTALL),latest)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools
	$(BIN)/python -m pip install --quiet --upgrade -e '.[dev,bench]'
else ifeq ($(INSTALL),oldest)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip install --quiet $$($(BIN)/python requirements/versions.py oldest)
else
	$(error INSTALL is "$(INSTALL)": use locked, latest or oldest)
endif
	$(BIN)/python requirements/versions.py moved requirements/dev.txt
	touch $@

# Resolve the locks again: keeps today's pins where pyproject.toml still allows
# them; make lock-upgrade moves every pin to the newest release allowed.
lock: $(VENV)/.dev-installed
	$(UV_COMPILE) $(UPGRADE) --extra dev --extra bench -o requirements/dev.txt
	$(UV_COMPILE) $(UPGRADE) --extra demo --extra redis -c requirements/dev.txt \
	  -o requirements/demo.txt

lock-upgrade:
	$(MAKE) --no-print-directory lock UPGRADE=--upgrade

# The suite in a fresh virtualenv, from the ranges alone: the newest releases
# allowed, or the oldest of the app's own dependencies (the tools stay locked).
test-latest:
	rm -rf .venv-latest
	$(MAKE) --no-print-directory test VENV=.venv-latest INSTALL=latest

test-oldest:
	rm -rf .venv-oldest
	$(MAKE) --no-print-directory test VENV=.venv-oldest INSTALL=oldest

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

demo-redis: $(VENV)/.demo-installed
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
# browser tests, nginx for the HTTP/2 proxy recipe. Under CI (CI=true) a missing one
# is an error, not a skip. A policy-rc.d keeps apt from starting nginx's service.
SYSTEM_PACKAGES := redis-server:redis-server chromium:chromium nginx:nginx-light

system-deps:
	@missing=""; for entry in $(SYSTEM_PACKAGES); do \
	  command -v "$${entry%%:*}" >/dev/null 2>&1 || missing="$$missing $${entry#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's$$missing for the tests"; \
	    blocker=""; if [ ! -e /usr/sbin/policy-rc.d ]; then \
	      blocker=/usr/sbin/policy-rc.d; printf '#!/bin/sh\nexit 101\n' > $$blocker; chmod +x $$blocker; \
	    fi; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing >/dev/null; \
	    status=$$?; [ -n "$$blocker" ] && rm -f $$blocker; [ $$status = 0 ] || exit $$status; \
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

# BENCH_RUNS: runs per figure of the fan-out matrix and of the Redis figures (medians);
# 1 for a quicker pass. make bench ends with what make bench-redis prints (it needs
# redis-server, which system-deps installs).
BENCH_RUNS ?= 3

bench: $(VENV)/.dev-installed system-deps
	$(BIN)/python bench/e2e.py --runs $(BENCH_RUNS)
	$(BIN)/python bench/pages.py
	$(BIN)/python bench/tracking.py
	$(BIN)/python bench/budget.py
	$(BIN)/python bench/churn.py
	$(BIN)/python bench/bigsave.py
	$(BIN)/python bench/reconnect.py
	$(BIN)/python bench/rows.py
	$(BIN)/python bench/redis.py --runs $(BENCH_RUNS)

bench-redis: $(VENV)/.dev-installed system-deps
	$(BIN)/python bench/redis.py

bench-profile: $(VENV)/.dev-installed
	$(BIN)/python bench/profile.py --out profile

# Three daphne processes on Redis, under load, while one is killed, Redis restarts
# and a reader pauses, for ten minutes (tests/test_soak.py runs one short cycle).
soak: $(VENV)/.dev-installed system-deps
	$(BIN)/python bench/soak.py --minutes 10

# Fetch the pinned htmx and idiomorph files again from the npm registry (see the vendor README).
vendor:
	rm -rf $(VENV)/npm && mkdir -p $(VENV)/npm
	cd $(VENV)/npm && npm pack --silent htmx.org@2.0.11 htmx-ext-sse@2.2.4 idiomorph@0.8.0 >/dev/null \
	  && tar xzf htmx.org-2.0.11.tgz && mv package htmx && tar xzf htmx-ext-sse-2.2.4.tgz && mv package sse \
	  && tar xzf idiomorph-0.8.0.tgz && mv package idiomorph
	cp $(VENV)/npm/htmx/dist/htmx.min.js reactive_blocks/static/reactive_blocks/vendor/htmx.min.js
	cp $(VENV)/npm/htmx/LICENSE reactive_blocks/static/reactive_blocks/vendor/htmx.LICENSE
	cp $(VENV)/npm/sse/sse.js reactive_blocks/static/reactive_blocks/vendor/htmx-ext-sse.js
	cp $(VENV)/npm/sse/LICENSE reactive_blocks/static/reactive_blocks/vendor/htmx-ext-sse.LICENSE
	cp $(VENV)/npm/idiomorph/dist/idiomorph.min.js reactive_blocks/static/reactive_blocks/vendor/idiomorph.min.js
	cp $(VENV)/npm/idiomorph/LICENSE reactive_blocks/static/reactive_blocks/vendor/idiomorph.LICENSE
	# Other htmx versions the browser tests run the client with (docs/connections.md).
	cd $(VENV)/npm && for version in 1.9.12 4.0.1; do \
	  npm pack --silent htmx.org@$$version >/dev/null && mkdir -p $$version \
	  && tar xzf htmx.org-$$version.tgz -C $$version \
	  && cp $$version/package/dist/htmx.min.js ../../tests/vendor/htmx-$$version.min.js \
	  && cp $$version/package/LICENSE ../../tests/vendor/htmx-$$version.LICENSE; \
	done

clean:
	rm -rf $(VENV) .venv-latest .venv-oldest site demo_project/db.sqlite3
