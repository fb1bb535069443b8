# discbias: `make setup` once, then `make report`. `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
CLI    := $(VENV)/bin/discbias
CONFIG ?= analysis/grissom2024.toml
# Which steps rerun is the engine's decision (discbias.engine: each step's code, inputs, parameters
# and the files it wrote), not make's: every target below calls the command line, which skips what
# is up to date. `make report CONFIG=analysis/<audit>.toml` runs an audit the same way.

.PHONY: help setup report fetch measure fit figures render bundle verify test test-all test-kernels bench probes-demo clean distclean

help: ## list every target
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: $(VENV)/.installed ## create .venv and install the project with its test tools

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

fetch: | $(VENV)/.installed ## download the released data (or copy it from the DISCBIAS_DATA_MIRROR folder), sha256-verified
	$(CLI) fetch --config $(CONFIG)
measure: | $(VENV)/.installed ## tidy tables from the raw files (build/measures)
	$(CLI) measure --config $(CONFIG)
fit: | $(VENV)/.installed ## fit every model (build/results, build/values.json)
	$(CLI) fit --config $(CONFIG)
figures: | $(VENV)/.installed ## figures and publication tables (build/figures, build/tables)
	$(CLI) figures --config $(CONFIG)
render: | $(VENV)/.installed ## render the paper (build/report/paper.{qmd,html,pdf})
	$(CLI) render --config $(CONFIG)
report: | $(VENV)/.installed ## run every step that is out of date and render the paper (any study: CONFIG=analysis/<study>.toml)
	$(CLI) report --config $(CONFIG)

bundle: report ## zip the build for publication (build/bundle/<study>-<commit>.zip)
	$(CLI) bundle --config $(CONFIG)

verify: | $(VENV)/.installed ## compare build/ with a bundle: make verify BUNDLE=path/to/bundle.zip (report in build/verify/)
	@test -n "$(BUNDLE)" || { echo "make verify: set BUNDLE=path/to/<study>-<commit>.zip"; exit 2; }
	$(CLI) verify $(BUNDLE) --config $(CONFIG)

test: | $(VENV)/.installed ## run the test suite (unit, integration through the data mirror, end to end)
	$(PY) -m pytest

# The numerically sensitive tests (measures, statistics, network parity, Bayesian fits, verify):
# `make test-kernels` reruns them under every other OpenBLAS kernel this CPU supports and with numpy's
# optional SIMD extensions disabled (.ci/kernel_settings.py lists the settings); KERNELS=ci runs one of
# each kind, KERNEL_TESTS= (empty) the whole suite.
KERNEL_TESTS ?= tests/test_measures_*.py tests/test_stats_*.py tests/test_crossed.py tests/nets \
	tests/test_reproduce_units.py tests/test_scoring_batch_invariance.py src/discbias/measures src/discbias/stats
test-kernels: | $(VENV)/.installed ## the numerically sensitive tests under other BLAS kernels and numpy SIMD settings
	@set -eo pipefail; $(PY) .ci/kernel_settings.py $(KERNELS) | while IFS= read -r s; do \
	  echo "== make test-kernels: $$s"; env "$$s" $(PY) -m pytest -q $(KERNEL_TESTS); done

test-all: | $(VENV)/.installed ## the test suite plus the expensive sampler-equivalence test (about 5 more minutes)
	DISCBIAS_EXPENSIVE_TESTS=1 $(PY) -m pytest

probes-demo: | $(VENV)/.installed ## mechanics demo of the probes on an untrained D, watermarked (build/probes-demo/)
	$(PY) -m discbias.probes.demo --config analysis/probes-demo.toml

bench: | $(VENV)/.installed ## run every benchmark in benchmarks/ (results in benchmarks/results/)
	@set -e; for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b; done

clean: ## remove build outputs (keeps downloaded data and the environment)
	rm -rf build

distclean: clean ## remove build outputs, downloaded data and the environment
	rm -rf data $(VENV)
