# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Extras `make setup` installs; CI adds the rest its tests use: make setup EXTRAS=train,dev,bench,openvino,mobile,pretrained,docs
EXTRAS ?= train,dev
comma  := ,
# One stamp per set of extras: asking for other extras installs them into the same venv.
STAMP  := $(VENV)/.edgeunet-installed-$(subst $(comma),-,$(EXTRAS))

.PHONY: setup demo test test-fast lint bench docs clean

setup: $(STAMP)

# Reinstalls when the dependency list, the pins or the version (edgeunet/__init__.py) change.
$(STAMP): pyproject.toml constraints.txt edgeunet/__init__.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --disable-pip-version-check -c constraints.txt -e '.[$(EXTRAS)]'
	@touch $(STAMP)

demo: setup
	$(BIN)/edgeunet quickstart --out runs/quickstart

test: setup
	$(BIN)/python -m ruff check edgeunet tests benchmarks examples
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

# Style and bug-pattern checks (rules in pyproject.toml [tool.ruff]).
lint: setup
	$(BIN)/python -m ruff check edgeunet tests benchmarks examples

# The suite also benchmarks MONAI's BasicUNet (the `bench` extra) as the reference users know.
bench: setup
	$(BIN)/python -m pip install -qq --disable-pip-version-check -c constraints.txt -e '.[train,dev,bench]'
	$(BIN)/python benchmarks/run.py

# The manual (docs/, mkdocs.yml), built strictly: a broken link or anchor, or a page missing from the nav, fails.
docs: setup
	$(BIN)/python -m pip install -qq --disable-pip-version-check -c constraints.txt -e '.[$(EXTRAS),docs]'
	$(BIN)/python -m mkdocs build --strict --site-dir site

clean:
	rm -rf runs site .pytest_cache
