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
	# Only scikit-image's bundled photographs (skimage/data, read as files by
	# tests/engines/test_person_filter.py): without its dependencies, whose imageio would
	# change how diffusers' export_to_video writes (bench/gpu.py's stock reference).
	$(BIN)/pip install --quiet --no-deps 'scikit-image>=0.22'
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

# The scale-out topology on this machine (README "Scale-out"): Redis, PostgreSQL, an S3 server
# (moto), 2 API nodes and 2 workers, each its own process; prints the URLs and a key; Ctrl-C
# stops it all. `make cluster CLUSTER_ARGS="--workers 4 --blobs local"` for other shapes.
.PHONY: cluster
cluster: $(VENV)/.dev-installed
	$(BIN)/python deploy/cluster.py $(CLUSTER_ARGS)
