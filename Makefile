# `make demo` and `make test` set everything up themselves on a fresh machine.
# TORCH_SPEC is what pip installs for torch, before the project: the default is the CPU wheel; GPU users set
# e.g. TORCH_SPEC="torch==2.13.0 --index-url <the CUDA wheel index of their choice>" (or any torch>=2.4).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test setup clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/hf-seq demo --output_dir runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

clean:
	rm -rf $(VENV) runs
