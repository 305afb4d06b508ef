# Annotated Attention — every task a maintainer or reader needs, from a bare python3.
#   make book     set up .venv (once) and build the HTML book from the stored notebook outputs
#   make test     set up .venv (once), then ruff, unit tests (with pairing/toc checks), nbval, strict book build,
#                 the site in headless Chromium (check-site), a notebook through JupyterLab (check-lab) and a
#                 notebook downloaded from the site run in a fresh venv from its first cell (check-download)
#   make lab      JupyterLab on the notebooks
#   make sync     pair notebooks/NN_topic.py (the source) with NN_topic.ipynb (jupytext)
#   make execute  re-execute every notebook in place (stores outputs), printing the time each took, and record
#                 in each the torch version, CPU capability and threads that produced them
#   make bench    training throughput (tokens/s of the library's decoder vs nn.TransformerEncoderLayer, one thread),
#                 time and peak-memory benchmark of the attention kernels, and block-wise memory per encoding;
#                 with NANOGPT_DIR set, the train command against nanoGPT's train.py, whole process (300, 2000 its)
#   make clean    remove build outputs (keeps .venv); make distclean also removes .venv

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
SOURCES   := $(sort $(wildcard notebooks/*.py))

# Local copy of Tiny Shakespeare for the lab and the notebooks (the library downloads it otherwise).
SHARED_TEXT := $(abspath ../shared/data/tinyshakespeare.txt)
ifneq ($(wildcard $(SHARED_TEXT)),)
export ANNOTATED_TINYSHAKESPEARE ?= $(SHARED_TEXT)
endif
# Same numbers on every machine: no multithreading surprises beyond the 2 cores we plan for.
export OMP_NUM_THREADS ?= 2
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: install book test lint unit nbval check-notebooks book-strict lab sync execute bench clean distclean \
        browser-deps check-site check-lab check-download

install: $(STAMP)

# Re-runs only when the lock file or the package metadata change.
$(STAMP): requirements-lock.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-lock.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

book: $(STAMP)
	$(BIN)/jupyter-book build . --keep-going
	@echo "The book is at file://$(abspath _build/html/index.html)"

test: $(STAMP)
	$(MAKE) --no-print-directory lint unit nbval book-strict check-site check-lab check-download
	@echo "make test: all checks passed"

lint: $(STAMP)
	$(BIN)/ruff check .

unit: $(STAMP)
	$(BIN)/python -m pytest tests

# The stored outputs were made natively (each notebook's metadata says with which CPU capability); nbval
# re-runs them under another one (`default`: no vector kernels), so the suite itself plays "another machine".
# Training numbers are not compared (their cells are tagged nbval-ignore-output); each conclusion drawn from
# them is checked in the notebook with a tolerance. ATEN_CPU_CAPABILITY=avx2 make test picks the capability.
NBVAL_CAPABILITY ?= $(or $(ATEN_CPU_CAPABILITY),default)
nbval: $(STAMP)
	ATEN_CPU_CAPABILITY=$(NBVAL_CAPABILITY) $(BIN)/python -m pytest --nbval --nbval-current-env --nbval-cell-timeout=600 -p no:cacheprovider $(NOTEBOOKS)

book-strict: $(STAMP)
	rm -rf _build/html _build/.doctrees
	$(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going
	@echo "The book is at file://$(abspath _build/html/index.html)"

# Debian's Chromium for check-site: installed when missing and we may (root with apt-get, as in CI);
# otherwise a notice, and check-site skips.
CHROMIUM ?= /usr/bin/chromium
browser-deps:
	@if [ -x "$(CHROMIUM)" ]; then \
	  echo "browser-deps: $$($(CHROMIUM) --version 2>/dev/null)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "browser-deps: installing chromium (apt-get)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium \
	    || echo "*** NOTICE: apt-get could not install chromium; check-site will be skipped ***"; \
	else \
	  echo "*** NOTICE: no $(CHROMIUM), and not root with apt-get: check-site will be skipped." \
	       "Install it with: sudo apt-get install chromium ***"; \
	fi

# Open every page of the built book (make book-strict first) in headless Chromium at 1280 and 390 px, with the
# network blocked; screenshots in _build/screenshots/{1280,390}. Then the tests that read the built pages:
# each chapter shows the library source it teaches, the API reference has every public name.
# Output blocks and code lines (code cells, show_source listings, code blocks; folded ones unfolded) wider than
# the text column at 1280 px, and figures shrunk more than 2x, fail it too;
# `make check-site CHECK_SITE_FLAGS=--presentation=report` lists them without failing (while editing a chapter).
CHECK_SITE_FLAGS ?=
check-site: $(STAMP) browser-deps
	$(BIN)/python scripts/check_site.py --html _build/html --screenshots _build/screenshots --chromium $(CHROMIUM) \
	  $(CHECK_SITE_FLAGS)
	ANNOTATED_BUILT_SITE=$(abspath _build/html) $(BIN)/python -m pytest -q -p no:cacheprovider \
	  tests/test_chapter_sources.py tests/test_api_reference.py

# Run a notebook through a JupyterLab server's kernel websocket and check its ipywidgets models.
check-lab: $(STAMP)
	$(BIN)/python scripts/check_lab.py notebooks/01_attention.ipynb

# Run the notebook a chapter page offers for download (make book-strict first) in a fresh venv
# (not .venv) whose only set-up is the notebook's first cell, installing this checkout (~2-3 min).
check-download: $(STAMP)
	$(BIN)/python scripts/check_download.py --html _build/html --page notebooks/01_attention

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

sync: $(STAMP)
	$(BIN)/jupytext --set-formats ipynb,py:percent $(SOURCES)
	$(BIN)/jupytext --sync $(SOURCES)

# NB=notebooks/01_attention.ipynb limits it to one notebook.
NB ?= $(NOTEBOOKS)
execute: $(STAMP)
	@for nb in $(NB); do \
	  start=$$(date +%s); \
	  $(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=600 "$$nb" || exit 1; \
	  $(BIN)/python scripts/record_execution.py "$$nb" || exit 1; \
	  printf '%-45s %4d s\n' "$$nb" "$$(( $$(date +%s) - start ))"; \
	done

# With NANOGPT_DIR (a nanoGPT checkout), also the whole-process A/B of `train` against nanoGPT's train.py.
bench: $(STAMP)
	$(BIN)/python -m annotated.bench --out _build/bench --throughput-repeats 7
	@if [ -n "$$NANOGPT_DIR" ]; then \
	  $(BIN)/python -m annotated.bench.nanogpt --out _build/bench; \
	else \
	  echo "make bench: set NANOGPT_DIR to a nanoGPT checkout (git clone https://github.com/karpathy/nanoGPT)" \
	       "to add the train command against nanoGPT's train.py (python -m annotated.bench.nanogpt)"; \
	fi

clean:
	rm -rf _build .pytest_cache .ruff_cache .hypothesis

distclean: clean
	rm -rf $(VENV)
