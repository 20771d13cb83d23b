# `make demo` and `make test` set everything up themselves on a fresh machine.
# TORCH_SPEC is what pip installs for torch, before the project: the default is the CPU wheel; GPU users set
# e.g. TORCH_SPEC="torch==2.13.0 --index-url <the CUDA wheel index of their choice>" (or any torch>=2.4).
#
# Three environments, one virtualenv each (docs/developing.md):
#   .venv         the default: every package at the versions of constraints/tested.txt (`make setup/test/demo`)
#   .venv-lowest  the lowest releases pyproject.toml admits, constraints/lowest.txt (`make test-lowest`)
#   .venv-newest  the newest releases, installed fresh each time (`make test-newest`; `make lock` records them)
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
VENV ?= .venv
LOWEST := .venv-lowest
NEWEST := .venv-newest
PYTEST_ARGS ?= -q tests

.PHONY: demo test setup lint style test-lowest test-newest test-matrix lock clean

# $(call make_venv,folder): a virtualenv with pip up to date and torch installed.
define make_venv
	$(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install -q --upgrade pip
	$(1)/bin/python -m pip install -q $(TORCH_SPEC)
endef

$(VENV)/.installed: pyproject.toml constraints/tested.txt
	$(call make_venv,$(VENV))
	$(VENV)/bin/python -m pip install -q -c constraints/tested.txt -e ".[dev]"
	touch $@

$(LOWEST)/.installed: pyproject.toml constraints/lowest.txt
	$(call make_venv,$(LOWEST))
	$(LOWEST)/bin/python -m pip install -q -c constraints/lowest.txt -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/hf-seq demo --output_dir runs/demo

# ruff with transformers' settings (pyproject.toml): `lint` checks, `style` rewrites.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

style: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: $(VENV)/.installed
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

test-lowest: $(LOWEST)/.installed
	$(LOWEST)/bin/python -m pytest $(PYTEST_ARGS)

$(NEWEST)/bin/python:
	$(call make_venv,$(NEWEST))

# The upgrade keeps the torch that TORCH_SPEC installed (eagerly upgraded, it would become a CUDA build of several GB).
test-newest: $(NEWEST)/bin/python
	$(NEWEST)/bin/python -c "import torch; print('torch==' + torch.__version__)" > $(NEWEST)/torch-constraint.txt
	$(NEWEST)/bin/python -m pip install -q --upgrade --upgrade-strategy eager -c $(NEWEST)/torch-constraint.txt -e ".[dev]"
	$(NEWEST)/bin/python -m pip list 2>/dev/null | grep -i -E '^(transformers|tokenizers|datasets|accelerate|huggingface.hub) '
	$(NEWEST)/bin/python -m pytest $(PYTEST_ARGS)

test-matrix: test-lowest test-newest

# Record the newest releases as the tested versions, once the whole suite has passed on them.
lock: test-newest
	{ grep '^#' constraints/tested.txt; \
	  $(NEWEST)/bin/python -m pip freeze --exclude-editable | grep -v -i -E '^(hf-seq|torch|nvidia-|cuda-|triton)' | sort -f; \
	} > constraints/tested.txt.new
	mv constraints/tested.txt.new constraints/tested.txt

clean:
	rm -rf $(VENV) $(LOWEST) $(NEWEST) runs
