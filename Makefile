# The two commands a new user runs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint docs bench-core bench-scan clean help
.DEFAULT_GOAL := help

help:
	@echo "make demo        serve the demo site on http://127.0.0.1:8000 (daphne, in-process bus)"
	@echo "make test        lint, type-check, build the docs and run the whole suite"
	@echo "make bench-core  print the core engine's benchmark figures"
	@echo "make bench-scan  print the start-up template scan's figures"
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
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	@echo "Serving the demo on http://127.0.0.1:8000 (Ctrl-C stops it)"
	$(BIN)/daphne -b 127.0.0.1 -p 8000 demo_project.asgi:application

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy reactive_blocks

docs: $(VENV)/.dev-installed
	$(BIN)/mkdocs build --strict

test: lint
	$(BIN)/mkdocs build --strict --quiet --site-dir $(VENV)/docs-site
	$(BIN)/python -m pytest

bench-core: $(VENV)/.dev-installed
	$(BIN)/python bench/core.py

bench-scan: $(VENV)/.dev-installed
	$(BIN)/python bench/scan.py

clean:
	rm -rf $(VENV) site demo_project/db.sqlite3
