# Two commands: `make book` (the website, the paper edition; PROFILE=quick for the preview CI checks) and `make test`.
# Both create .venv from requirements.txt on a fresh machine (Python 3.11 and pip are all they need).
PYTHON ?= python3
PROFILE ?= paper
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export LINTF_CACHE_DIR ?= $(CURDIR)/.cache/results
export PYDEVD_DISABLE_FILE_VALIDATION := 1
# numba's compiled kernels (lintf_core/fast.py), compiled once per machine
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba

.PHONY: setup book paper quick test unit nbval references bench clean

setup: $(STAMP)

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	# make lintf_core importable from the venv (notebooks, papermill and nbval kernels included)
	$(PY) -c "import site, pathlib; pathlib.Path(site.getsitepackages()[0], 'lintf.pth').write_text('$(CURDIR)\n')"
	$(PY) -m ipykernel install --sys-prefix --name lintf --display-name lintf
	touch $(STAMP)

book: $(STAMP)
	$(PY) -m lintf_core book --profile $(PROFILE)

paper:
	$(MAKE) book PROFILE=paper

quick:
	$(MAKE) book PROFILE=quick

# Unit tests, then nbval re-executes the committed quick-profile notebooks and compares their checked outputs,
# then the book is built (the notebooks' results are cached by then, so this mostly checks the site build).
test: $(STAMP)
	$(PY) -m pytest -q tests
	$(PY) -m pytest -q --nbval-lax --nbval-kernel-name lintf -p no:cacheprovider notebooks
	$(PY) -m lintf_core book --profile quick

# Regenerate the committed reference notebooks (notebooks/*.ipynb) from their Jupytext sources, executed in the
# quick profile. Run after editing a notebook's .py; commit both.
references: $(STAMP)
	for src in notebooks/*.py; do \
	  $(VENV)/bin/jupytext --to ipynb --update-metadata '{"kernelspec": {"name": "lintf", "display_name": "lintf", "language": "python"}}' "$$src" -o "$${src%.py}.ipynb" && \
	  $(VENV)/bin/papermill --cwd notebooks -k lintf "$${src%.py}.ipynb" "$${src%.py}.ipynb" || exit 1; \
	done

bench: $(STAMP)
	$(PY) -m lintf_core bench

clean:
	rm -rf _build .cache
