# Two entry points: `make quickstart` (set up, then run the main job) and
# `make test` (set up, then run the test suite). Both create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RECIPE ?= recipes/quickstart_speech.toml

.PHONY: quickstart test setup bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt -e ".[all,test]"
	# ABX builds a C extension: optional, so a machine that cannot build it still tests the rest.
	$(PY) -m pip install -q -c constraints.txt -e ".[abx]" || echo "cpcframe[abx] not installed: the ABX tests will skip"
	touch $@

setup: $(VENV)/.installed

quickstart: setup
	$(VENV)/bin/cpcframe run $(RECIPE)

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/run_all.py

clean:
	rm -rf runs .pytest_cache
