# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.edgeunet-installed

.PHONY: setup demo test test-fast bench clean

setup: $(STAMP)

# Reinstalls only when the dependency list or the pins change.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --disable-pip-version-check -c constraints.txt -e '.[train,dev]'
	@touch $(STAMP)

demo: setup
	$(BIN)/edgeunet quickstart --out runs/quickstart

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

# The suite also benchmarks MONAI's BasicUNet (the `bench` extra) as the reference users know.
bench: setup
	$(BIN)/python -m pip install -qq --disable-pip-version-check -c constraints.txt -e '.[train,dev,bench]'
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf runs .pytest_cache
