# Territory Planner — developer commands. `make demo` and `make test` set up everything they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

ROOT := $(abspath .)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
BUILD := $(ROOT)/build
export QT_QPA_PLATFORM ?= offscreen
export XDG_RUNTIME_DIR ?= /tmp/runtime-$(shell id -u)

.PHONY: help sysdeps venv test test-unit test-integration test-engine-numpy2 test-repeat soak demo package lint bench bench-nat-data bench-scale bench-dock bench-dock-1m bench-dock-1m-polygons bench-travel bench-accounts bench-feedback clean

help:
	@echo "make demo      build territories on the bundled Georgia counties with qgis_process"
	@echo "make test      run all tests (unit + inside real QGIS + QGIS desktop under Xvfb)"
	@echo "make test-debian13  the whole suite again in a Debian 13 root (QGIS 3.40; needs root)"
	@echo "make test-repeat RUNS=10  the suite RUNS times in a row, stops at the first failed run"
	@echo "make soak      engine property tests on 3,000 new random instances (record the result in bench/RESULTS.md)"
	@echo "make lint      ruff and the Qt6-readiness check"
	@echo "make package   write dist/territory_planner-<version>.zip for 'Install from ZIP'"
	@echo "make bench     run the benchmark, write bench/RESULTS.md"
	@echo "make bench-nat-data  fetch the NAT US counties (libpysal 4.1.1) into build/nat/ for bench/engine_quality.py"
	@echo "make bench-scale  processing.run on 100,000 to 1,000,000 units (part of make bench)"
	@echo "make bench-dock  time the territory panel on 50,000 units and its Rebalance on county-like layers, write bench/RESULTS-dock.md"
	@echo "make bench-dock-1m  the same on 1,000,000 account points in a GeoPackage"
	@echo "make bench-dock-1m-polygons  the same on 1,000,000 Voronoi polygons in a GeoPackage"
	@echo "make bench-travel  straight-line vs road-network Build on 10,000 units, section of bench/RESULTS.md"
	@echo "make bench-accounts  1,000,000 accounts over 33,000 ZIP-like units: assignaccounts, Build; section of bench/RESULTS.md"
	@echo "make bench-feedback  feedback page sizes and generation time on 3,000 units, section of bench/RESULTS.md"

sysdeps:
	@bash scripts/install-system-deps.sh

# The venv sees QGIS's bindings and Debian's numpy/scipy (--system-site-packages); the
# constraint keeps pip from replacing numpy with one GDAL was not built against.
$(VENV)/.stamp: requirements-dev.txt scripts/install-system-deps.sh
	@bash scripts/install-system-deps.sh
	@test -x $(PY) || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	@/usr/bin/python3 -c 'import numpy; print("numpy==" + numpy.__version__)' > $(VENV)/constraints.txt
	@$(PY) -m pip install -q --disable-pip-version-check -c $(VENV)/constraints.txt -r requirements-dev.txt
	@touch $@

venv: sysdeps $(VENV)/.stamp

# Tests run QGIS with a throw-away profile, never the developer's own.
TEST_ENV := QGIS_CUSTOM_CONFIG_PATH=$(BUILD)/qgis-test-profile
NP2_VENV := $(BUILD)/numpy2-venv

# The suite runs in parallel (pytest-xdist): WORKERS processes, each with its own QGIS, QGIS
# profile (pytest-qgis: .qgis-settings/<worker>), tmp_path, PostGIS server and X display.
# `auto` is one per core; WORKERS=0 runs everything in this one process. worksteal: a worker that
# runs out of tests takes half of another's queue, so the long tests (marker `slow`, started
# first by tests/conftest.py) do not leave one core idle at the end.
WORKERS ?= auto
XDIST := -n $(WORKERS) $(if $(filter 0,$(WORKERS)),,--dist worksteal)

# SAME_EVERYWHERE_PYTHON: tests/unit/test_same_everywhere.py builds the same instances there too
# (NumPy 2) and compares the labels with this interpreter's (NumPy 1.24 on Debian 12).
test: venv $(NP2_VENV)/.stamp
	@mkdir -p $(XDG_RUNTIME_DIR) && chmod 700 $(XDG_RUNTIME_DIR)
	$(TEST_ENV) SAME_EVERYWHERE_PYTHON=$(NP2_VENV)/bin/python $(PY) -m pytest $(XDIST) tests
	$(MAKE) test-engine-numpy2

# The whole suite on Debian 13 (QGIS 3.40, Python 3.13, NumPy 2) in a debootstrap root kept in
# build/debian13; tests the current commit (see the script).
.PHONY: test-debian13
test-debian13:
	@bash scripts/test-debian13.sh

# make test-repeat RUNS=10: the suite of `make test` RUNS times in a row (a flaky test shows up as a
# failed run); stops at the first failing run and says which. Verbose (-v): every finished test is
# named as it ends; a test that crashes its worker's interpreter is named by xdist ("worker 'gw0'
# crashed while running '<test>'") and counted as failed, and the worker is replaced. On Debian 13:
#   bash scripts/test-debian13.sh make test-repeat RUNS=10
RUNS ?= 10
test-repeat: venv $(NP2_VENV)/.stamp
	@mkdir -p $(XDG_RUNTIME_DIR) && chmod 700 $(XDG_RUNTIME_DIR)
	@for run in $$(seq 1 $(RUNS)); do \
	  echo "=== test-repeat: run $$run of $(RUNS) ($$(date -u +%H:%M:%S) UTC)"; \
	  $(TEST_ENV) SAME_EVERYWHERE_PYTHON=$(NP2_VENV)/bin/python $(PY) -m pytest $(XDIST) -v tests \
	    && $(MAKE) --no-print-directory test-engine-numpy2 \
	    || { echo "=== test-repeat: run $$run of $(RUNS) FAILED"; exit 1; }; \
	done; echo "=== test-repeat: $(RUNS) runs in a row passed"

test-unit: venv
	$(TEST_ENV) $(PY) -m pytest $(XDIST) tests/unit

# The engine (core/) imports only numpy and scipy: its unit tests also run under NumPy 2 in a
# plain venv (no QGIS), so the same seed gives the same plan on Debian 12 and 13. pytest-xdist is
# pinned as in requirements-dev.txt; the venv is brought up to date when NP2_PACKAGES changes.
NP2_PACKAGES := "numpy>=2" scipy pytest pytest-timeout hypothesis pytest-xdist==3.8.0
NP2_STAMP := $(NP2_VENV)/.stamp-$(shell echo '$(NP2_PACKAGES)' | cksum | cut -d' ' -f1)
$(NP2_VENV)/.stamp: $(NP2_STAMP)
	@touch $@
$(NP2_STAMP):
	@test -x $(NP2_VENV)/bin/python || /usr/bin/python3 -m venv $(NP2_VENV)
	@$(NP2_VENV)/bin/pip install -q --disable-pip-version-check $(NP2_PACKAGES)
	@rm -f $(NP2_VENV)/.stamp-* && touch $@

test-engine-numpy2: $(NP2_VENV)/.stamp
	$(NP2_VENV)/bin/python -m pytest -p no:qgis $(XDIST) tests/unit

test-integration: venv
	$(TEST_ENV) $(PY) -m pytest $(XDIST) tests/integration

# The property tests of tests/unit/test_properties.py and test_rebalance_never_worse.py with the
# "soak" profile: 1,000 new random instances per property (build, rebalance, rebalance never ranks
# below its input; `make test` runs 50 fixed ones of the first two and 200 of the third), niced; the statistics say how many ran
# and how long. No per-test time limit: 1,000 examples of one property take longer than pyproject's
# 900 s on a shared machine (the hang reproductions keep their own 30 s limit).
# Then the tests marked soak (pyproject.toml), e.g. same seed, same plan with the search running on
# 150 units, where `make test` runs 60.
soak: venv
	HYPOTHESIS_PROFILE=soak nice -n 10 $(PY) -m pytest tests/unit/test_properties.py \
		tests/unit/test_rebalance_never_worse.py -p no:cacheprovider --hypothesis-show-statistics -rxX --timeout=0
	nice -n 10 $(PY) -m pytest -m soak tests/unit -p no:cacheprovider -rxX

demo: venv
	@mkdir -p $(XDG_RUNTIME_DIR) && chmod 700 $(XDG_RUNTIME_DIR)
	$(PY) scripts/demo.py

package: venv
	$(PY) scripts/package.py

lint: venv
	$(VENV)/bin/ruff check .
	$(PY) scripts/qt6_check.py

# GerryChain needs numpy >= 2.4: its own plain venv, never .venv (see requirements-bench.txt).
GC_VENV := $(BUILD)/gerrychain-venv
$(GC_VENV)/.stamp: requirements-bench.txt
	@test -x $(GC_VENV)/bin/python || /usr/bin/python3 -m venv $(GC_VENV)
	@$(GC_VENV)/bin/pip install -q --disable-pip-version-check -r requirements-bench.txt
	@touch $@

# make bench [SIZES=500,2000] [SEEDS=1,4] [METHODS=engine,e2e,kmeans,gerrychain,lp,rebalance] [FRESH=1]
bench: venv $(GC_VENV)/.stamp
	@mkdir -p $(XDG_RUNTIME_DIR) && chmod 700 $(XDG_RUNTIME_DIR)
	$(PY) bench/run.py --gerrychain-python $(GC_VENV)/bin/python $(if $(SIZES),--sizes $(SIZES)) \
		$(if $(SEEDS),--seeds $(SEEDS)) $(if $(METHODS),--methods $(METHODS)) $(if $(FRESH),--fresh)
	$(PY) bench/scale.py $(if $(SCALE),--cases $(SCALE)) $(if $(FRESH),--fresh)

# The NAT US counties (libpysal 4.1.1's sdist on PyPI, BSD-3-Clause) for the conflicting-measures rows
# of bench/engine_quality.py: downloaded once into build/nat/, never committed (bench/nat.py)
bench-nat-data: venv
	$(PY) bench/nat.py

# make bench-scale [SCALE=accounts-100k,accounts-200k,voronoi-200k,accounts-1m,voronoi-1m] [FRESH=1]: only the large layers
bench-scale: venv
	@mkdir -p $(XDG_RUNTIME_DIR) && chmod 700 $(XDG_RUNTIME_DIR)
	nice -n 10 $(PY) bench/scale.py $(if $(SCALE),--cases $(SCALE)) $(if $(FRESH),--fresh)

# the painting figures on 50,000 units, then Rebalance in the panel against the toolbox (issue 26) on
# 3,000 and 50,000 county-like units, and on the NAT counties when build/nat/ holds them (bench/nat.py)
NAT_GPKG := build/nat/nat_counties.gpkg
bench-dock: venv
	@mkdir -p $(XDG_RUNTIME_DIR) && chmod 700 $(XDG_RUNTIME_DIR)
	$(PY) bench/bench_dock.py
	$(PY) bench/bench_dock_rebalance.py $(if $(wildcard $(NAT_GPKG)),--counties $(ROOT)/$(NAT_GPKG))

# the panel on 1,000,000 account points in a GeoPackage (written once to build/bench-dock/)
bench-dock-1m: venv
	@mkdir -p $(XDG_RUNTIME_DIR) && chmod 700 $(XDG_RUNTIME_DIR)
	nice -n 5 $(PY) bench/bench_dock.py --points 1000000 --clicks 40

# the panel on 1,000,000 Voronoi polygons in a GeoPackage (written once to build/bench-dock/)
bench-dock-1m-polygons: venv
	@mkdir -p $(XDG_RUNTIME_DIR) && chmod 700 $(XDG_RUNTIME_DIR)
	nice -n 5 $(PY) bench/bench_dock.py --polygons 1000000 --clicks 40

# make bench-travel [SEEDS=1,4]
bench-travel: venv
	nice -n 10 $(PY) bench/travel.py $(if $(SEEDS),--seeds $(SEEDS))

# make bench-accounts [ACCOUNT_JOBS=assign,build] [FRESH=1] (the instance is written once to bench/out/accounts/)
bench-accounts: venv
	@mkdir -p $(XDG_RUNTIME_DIR) && chmod 700 $(XDG_RUNTIME_DIR)
	nice -n 5 $(PY) bench/accounts.py $(if $(ACCOUNT_JOBS),--jobs $(ACCOUNT_JOBS)) $(if $(FRESH),--fresh)
# feedback pages on the synthetic 3,000-unit layer (issue 22)
bench-feedback: venv
	@mkdir -p $(XDG_RUNTIME_DIR) && chmod 700 $(XDG_RUNTIME_DIR)
	nice -n 5 $(PY) bench/feedback.py

clean:
	rm -rf $(BUILD) dist demo-output test-output .pytest_cache .ruff_cache
