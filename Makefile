# discbias: `make setup` once, then `make report`. `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
CLI    := $(VENV)/bin/discbias
CONFIG ?= analysis/grissom2024.toml
# Which configuration the build is for: its path and the sha256 of its bytes. build/.config is
# rewritten only when this changes (CONFIG=other.toml, an edit, or a switch back), and every stage
# depends on it, so a switch reruns fetch and measure (which clears the previous configuration's
# tables) and never reports the previous configuration's results.
CONFIG_ID := $(abspath $(CONFIG)) $(shell sha256sum $(CONFIG) 2>/dev/null | cut -c1-64)

# Code that the expensive stages depend on (report/ code only feeds figures and render).
FIT_SRC := $(shell find src/discbias -name '*.py' -not -path '*/report/*' 2>/dev/null)
ALL_SRC := $(shell find src/discbias -type f 2>/dev/null)
TEMPLATES := $(shell find report -type f 2>/dev/null)

.PHONY: help setup report fetch measure fit figures render bundle verify test test-all test-kernels bench probes-demo clean distclean FORCE

help: ## list every target
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: $(VENV)/.installed ## create .venv and install the project with its test tools

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

build/.config: FORCE
	@mkdir -p build
	@if [ "$$(cat $@ 2>/dev/null)" != "$(CONFIG_ID)" ]; then echo "$(CONFIG_ID)" > $@; fi

data/raw/.fetched: $(CONFIG) build/.config | $(VENV)/.installed
	$(CLI) fetch --config $(CONFIG)
	touch $@

build/measures/.done: data/raw/.fetched build/.config $(FIT_SRC)
	$(CLI) measure --config $(CONFIG)
	touch $@

build/values.json: build/measures/.done $(FIT_SRC) $(CONFIG)
	$(CLI) fit --config $(CONFIG)

build/figures/.done: build/values.json $(ALL_SRC)
	$(CLI) figures --config $(CONFIG)
	touch $@

build/report/paper.pdf build/report/paper.html &: build/figures/.done $(TEMPLATES) $(ALL_SRC)
	$(CLI) render --config $(CONFIG)

fetch: data/raw/.fetched ## download the released data (or copy it from the DISCBIAS_DATA_MIRROR folder), sha256-verified
measure: build/measures/.done ## tidy tables from the raw files (build/measures)
fit: build/values.json ## fit every model (build/results, build/values.json)
figures: build/figures/.done ## figures and publication tables (build/figures, build/tables)
render: build/report/paper.pdf ## render the paper (build/report/paper.{qmd,html,pdf})
report: build/report/paper.pdf build/report/paper.html ## run every stage that is out of date and render the paper

bundle: build/report/paper.pdf build/report/paper.html ## zip the build for publication (build/bundle/<study>-<commit>.zip)
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
