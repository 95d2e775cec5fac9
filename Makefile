# Two entry points on a fresh machine with only Python: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch pinned: the CPU build; an open range would pull a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[all]'
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/ctbench suite --preset smoke

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

.PHONY: setup run test
