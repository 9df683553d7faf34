# Two commands: `make book` (the website, the paper edition; PROFILE=quick for the preview CI checks) and `make test`.
# Both create .venv from requirements.txt on a fresh machine (Python 3.11 and pip are all they need).
PYTHON ?= python3
PROFILE ?= paper
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export LINTF_CACHE_DIR ?= $(CURDIR)/.cache/results
export PYDEVD_DISABLE_FILE_VALIDATION := 1
# pip installs without byte-compiling every file it unpacks (torch's thousands are most of a fresh setup); each module
# is compiled instead on its first import and its .pyc kept, which a PYTHONDONTWRITEBYTECODE in the environment (set on
# this project's machines) would forbid, so every later process would compile it again.
unexport PYTHONDONTWRITEBYTECODE
# numba's compiled kernels (lintf_core/engine/, sampler.py), compiled once per machine and per version of their sources
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba
# LLVM's optimisation level 1 for them instead of numba's default 3: the same bits and speed, a shorter cold compile
# (level 0 is far slower to run).
export NUMBA_OPT ?= 1
# The same numbers on every x86-64 machine with AVX2, Intel or AMD: torch's own kernels, MKL, numpy's loops, OpenBLAS
# and numba's LLVM otherwise pick their code path by CPU, and under fastmath and in reductions that changes the last
# bits, which grow through the chaotic training runs until the nbval references no longer match. So the code path is
# fixed: AVX2 for torch (its own kernels and oneDNN's); MKL's COMPATIBLE branch, the one it keeps on non-Intel CPUs
# too (it ignores its AVX2 branch on an AMD CPU); numpy's loops without AVX-512; OpenBLAS's Haswell kernels; numba
# compiled for a Haswell (its default features only: the empty feature list). `make bench` runs without these (each
# library at the CPU's native speed). History: PERFORMANCE.md.
CODE_PATH := ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_CBWR=COMPATIBLE \
	NPY_DISABLE_CPU_FEATURES=X86_V4,AVX512_ICL,AVX512_SPR OPENBLAS_CORETYPE=Haswell NUMBA_CPU_NAME=haswell \
	NUMBA_CPU_FEATURES=
CODE_PATH_NAMES := $(foreach pair,$(CODE_PATH),$(firstword $(subst =, ,$(pair))))
ifeq ($(shell uname -m),x86_64)
# each NAME=value of CODE_PATH exported as `export NAME ?= value` (a value already in the environment is kept)
$(foreach pair,$(CODE_PATH),$(eval export $(firstword $(subst =, ,$(pair))) ?= $(word 2,$(subst =, ,$(pair)))))
endif

# One thread per process; the cores are used by processes side by side instead: make book runs one notebook per
# core (lintf_core/execution.py sets one thread for each), nbval and the unit tests one pytest-xdist worker per core.
# On these 2-core machines that beat one process on 2 threads (kernel starts, imports, plots and per-iteration Python
# use one core whatever the thread count; README, "How long things take"), and the numbers no longer depend on a
# machine's core count. `make bench` runs at the machine's own thread count.
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export NUMBA_NUM_THREADS ?= 1
# (nproc honours OMP_NUM_THREADS, which this Makefile exports as 1: a recursive make, `make quick` or `make paper`,
# would otherwise see one core)
JOBS ?= $(shell env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc 2>/dev/null || echo 2)

.PHONY: setup browser text site-test book paper quick test unit nbval references bench lab clean scheduler worker

setup: $(STAMP) browser text

# Debian's Chromium and its driver, for the browser test of the site (tests/site); apt-get where there is one.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { command -v apt-get >/dev/null && { apt-get install -y -q chromium chromium-driver >/dev/null || \
	    { apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; }; }; } || \
	  { echo "make setup: the browser test needs Chromium: install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver, as root)"; exit 1; }

# Debian's fortunes, the premise chapter's English text (lintf_core/realnets.py); apt-get where there is one.
text:
	@test -d /usr/share/games/fortunes || \
	  { command -v apt-get >/dev/null && { apt-get install -y -q fortunes >/dev/null || \
	    { apt-get update -q >/dev/null && apt-get install -y -q fortunes >/dev/null; }; }; } || \
	  { echo "make setup: the premise chapter needs Debian's fortunes: apt-get install fortunes (as root)"; exit 1; }

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-compile -r requirements.txt
	# jsonschema (imported by nbformat in every kernel, papermill and nbval process) imports rfc3987-syntax when it is
	# there, which compiles a grammar at import: 2.5 s a process. It comes only as an optional extra of jupyterlab's
	# event schemas; without it IRI formats go unchecked, nothing else changes.
	$(PY) -m pip uninstall --quiet --yes rfc3987-syntax
	# make lintf_core importable from the venv (notebooks, papermill and nbval kernels included)
	$(PY) -c "import site, pathlib; pathlib.Path(site.getsitepackages()[0], 'lintf.pth').write_text('$(CURDIR)\n')"
	$(PY) -m ipykernel install --sys-prefix --name lintf --display-name lintf
	touch $(STAMP)

# numba's kernels compiled first, one family per process on every core (lintf_core/warmup.py); then the notebooks, as
# tasks of a local Dask cluster (one single-threaded worker per core), or of a running one: make book
# SCHEDULER=tcp://host:8786 (README, "On a cluster"; $LINTF_SCHEDULER alike)
SCHEDULER ?=
book: $(STAMP) text
	$(PY) -m lintf_core compile
	$(PY) -m lintf_core book --profile $(PROFILE) $(if $(SCHEDULER),--scheduler $(SCHEDULER),--jobs $(JOBS))

# On a cluster (README, "On a cluster"): a scheduler on one machine, workers on each, in a checkout with its .venv;
# the workers compute with the build's environment (the code path and one thread each, exported above) and
# lintf_core.cluster's Dask settings (`dask worker`'s command line, run from that module).
scheduler: $(STAMP)
	$(VENV)/bin/dask scheduler --port 8786

worker: $(STAMP) text
	@test -n "$(SCHEDULER)" || { echo "make worker: name the scheduler: make worker SCHEDULER=tcp://host:8786"; exit 2; }
	$(PY) -m lintf_core compile
	$(PY) -m lintf_core.cluster $(SCHEDULER) --nworkers $(JOBS) --nthreads 1 --memory-limit 0

paper:
	$(MAKE) book PROFILE=paper

quick:
	$(MAKE) book PROFILE=quick

# numba's kernels compiled on every core (as for book), unit tests, then nbval re-executes the committed quick-profile notebooks and compares their checked outputs,
# then the site is built from those references (just checked by nbval, so not executed a second time; `make quick`
# executes them), then every page of that site is opened in headless Chromium with the network off (tests/site).
test: unit nbval
	$(PY) -m lintf_core book --profile quick --from-references
	$(PY) -m pytest -q tests/site

# The unit tests alone, and nbval alone (each compiles numba's kernels first, a few seconds once they are cached).
unit: $(STAMP) browser text
	$(PY) -m lintf_core compile --tests
	$(PY) -m pytest -q -n $(JOBS) --durations=8 tests --ignore=tests/site

nbval: $(STAMP) text
	$(PY) -m lintf_core compile --tests
	$(PY) -m pytest -q -n $(JOBS) --dist loadscope --durations=13 --nbval-lax --nbval-kernel-name lintf -p no:cacheprovider notebooks

# The browser test alone, on the site last built (after `make book` or `make quick`).
site-test: browser
	$(PY) -m pytest -q tests/site

# Regenerate the committed reference notebooks (notebooks/*.ipynb) from their Jupytext sources, executed in the
# quick profile. Run after editing a notebook's .py; commit both.
references: $(STAMP)
	$(PY) -m lintf_core compile
	$(PY) -m lintf_core book --references $(if $(SCHEDULER),--scheduler $(SCHEDULER),--jobs $(JOBS))

bench: $(STAMP)
	env $(addprefix -u ,$(CODE_PATH_NAMES) OMP_NUM_THREADS MKL_NUM_THREADS NUMBA_NUM_THREADS) $(PY) -m lintf_core bench

# JupyterLab on localhost with the lintf kernel: jupytext opens every notebooks/*.py as a notebook (edit, re-run,
# save back to the .py). Ctrl-C stops it. (--allow-root: containers run as root; harmless otherwise.)
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --no-browser --ip=127.0.0.1 --allow-root --ServerApp.root_dir=$(CURDIR)

clean:
	rm -rf _build .cache
