# Every target creates the virtual environment and installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test bench lint results clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

## run: the embedded default experiment (64 CartPole-v1 seeds): summary table, plots, diagnosis
run: $(STAMP)
	$(VENV)/bin/jppo train

## test: the fast test suite
test: $(STAMP)
	$(PY) -m pytest

## bench: throughput, compile time, memory and fraction of peak, as JSON
bench: $(STAMP)
	$(PY) -m jppo.bench

## lint: ruff
lint: $(STAMP)
	$(VENV)/bin/ruff check .

## results: the README's learning table (long: about half an hour on 2 cores)
results: $(STAMP)
	$(PY) experiments/learning_results.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
