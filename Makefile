# Two commands for users (see README): `make run` and `make test`.
VENV ?= .venv
PYTHON ?= $(shell command -v python3.11 || command -v python3)
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: setup setup-dev run test test-fast lint params deps bench bench-10k clean

$(VENV)/.runtime: requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

# requirements-dev.txt includes requirements-deep.txt: CI runs the real deep features too.
$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt requirements-deep.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

setup: $(VENV)/.runtime
setup-dev: $(VENV)/.dev

## Install, then run the whole pipeline on the bundled samples with the committed boundary
## models: every stage from `features` on, never the training stages, so a clone without
## the BSDS500 train split runs too (`dvc repro train_boundaries` retrains; README).
## Not --allow-missing: it also skips stages whose cached outputs are missing, which on a
## fresh clone is every stage.
run: setup
	dvc repro --downstream features

## Install test tools, then lint, check dvc.yaml's deps, and run every test (what CI runs).
test: setup-dev
	ruff check .
	python scripts/stage_deps.py --check
	python -m pytest -n 2 --dist loadfile

## Unit tests only (skips the real `dvc repro` runs).
test-fast: setup-dev
	python -m pytest -m "not slow"

lint: setup-dev
	ruff check . && ruff format --check .

## Rewrite params.yaml from conf/ (what `dvc exp run` does; `dvc repro` does not).
params: setup
	python scripts/compose_params.py

## Rewrite each stage's src/ deps in dvc.yaml from its import closure.
deps: setup
	python scripts/stage_deps.py --write

## A short benchmark table: every algorithm, ours vs scikit-learn on every pixel, 0.25 MP (see benchmarks/).
bench: setup-dev
	python benchmarks/scale.py --sizes 0.25 --no-tune --no-dvc --naive-variants clean --naive-seconds 30

## Ten thousand photos through one `dvc repro` (hours; needs ../shared/data and ~55 GB of
## disk beside the project). Killed half-way, the same command goes on where it stopped.
## SIZE=0.05 0.15 for the issue's full size range (~80 GB); ENGINE=dask for a LocalCluster;
## SHARDS=501 for the pipeline over shards of 501 photos (python -m segclust.shards; 501 so that the new photo lands in a nearly full shard).
SIZE ?= 0.05 0.08
ENGINE ?= joblib
SHARDS ?= 0
SHARDED := $(if $(filter-out 0,$(SHARDS)),_shards$(SHARDS))
bench-10k: setup-dev
	test -d ../scale10k || python benchmarks/scale_10k.py make --count 10000 --out ../scale10k --megapixels $(SIZE)
	python benchmarks/scale_10k.py run --photos ../scale10k --engine $(ENGINE) --jobs 2 \
		--shards $(SHARDS) --workdir ../scale10k-run-$(ENGINE)$(SHARDED) \
		--out benchmarks/results/scale_10k$(if $(filter-out joblib,$(ENGINE)),_$(ENGINE))$(SHARDED).md

clean:
	rm -rf $(VENV) dvc_plots .pytest_cache .ruff_cache
