# The two commands a fresh machine needs:  make run  |  make test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml setup.py cinegen/engines/preview/_warp_blend.c | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml setup.py cinegen/engines/preview/_warp_blend.c | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,gpu]'
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(BIN)/cinegen serve

test: lint
	$(BIN)/pytest -n 2 --dist loadgroup

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check cinegen tests bench
	$(BIN)/ruff format --check cinegen tests bench
	$(BIN)/mypy

bench: $(VENV)/.dev-installed
	$(BIN)/python bench/api.py

clean:
	rm -rf $(VENV) data
