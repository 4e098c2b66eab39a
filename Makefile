# Every target creates the virtual environment and installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: help run test test-fast docs bench lint results compare objectives-study case-studies diagnosis-benchmark mutants clean modern-variants-networks modern-variants-families modern-variants-case-studies published
.DEFAULT_GOAL := help

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,brax,playground]"
	touch $(STAMP)

## help: this list (every target creates .venv first if needed)
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)

## run: the embedded default experiment (64 CartPole-v1 seeds): summary table, plots, diagnosis
run: $(STAMP)
	$(VENV)/bin/jppo train

## test: the whole test suite, one worker per core (most of its time is single-threaded compiles;
##   how it is kept fast: docs/testing.md), the longest files first
test: $(STAMP)
	$(PY) -m pytest -n auto --dist loadfile --no-loadscope-reorder

## test-fast: the tests not marked slow (pure functions, parsing, file formats, the
##   architecture checks): under two minutes on 2 cores; `make test` runs them all
test-fast: $(STAMP)
	$(PY) -m pytest -n auto --dist loadfile --no-loadscope-reorder -m "not slow"

## docs: the manual into site/ (MkDocs, strict: a broken link or reference fails); first
##   writes the generated reference pages (knobs, metrics, diagnosis rules) into docs/
DOCS_STAMP := $(VENV)/.docs-stamp
$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,brax,playground,docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(PY) docs/generate.py
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

## bench: throughput, compile time, memory and fraction of peak, as JSON
bench: $(STAMP)
	$(PY) -m jppo.bench

## lint: ruff
lint: $(STAMP)
	$(VENV)/bin/ruff check .

## results: the README's learning table (long: about half an hour on 2 cores)
results: $(STAMP)
	$(PY) experiments/learning_results.py

## compare: the committed comparison, 3 variants x 2 environments x 16 seeds (about 5 minutes)
compare: $(STAMP)
	rm -rf runs/value-scale
	$(VENV)/bin/jppo compare experiments/value_scale.toml --out runs/value-scale --progress lines
	mkdir -p experiments/value_scale
	cp runs/value-scale/summary.md runs/value-scale/summary.csv runs/value-scale/diagnosis.md \
	   runs/value-scale/plots/*.png experiments/value_scale/

## objectives-study: policy objectives and KL control vs standard PPO, 5 variants x 2
##   environments x 16 seeds (about 25 minutes on 2 busy cores), copied next to its README
objectives-study: $(STAMP)
	rm -rf runs/modern-objectives
	$(VENV)/bin/jppo compare experiments/modern_variants/objectives/objectives.toml \
	   --out runs/modern-objectives --progress lines
	cp runs/modern-objectives/summary.md runs/modern-objectives/summary.csv \
	   runs/modern-objectives/diagnosis.md runs/modern-objectives/plots/*.png \
	   experiments/modern_variants/objectives/

## modern-variants-networks: the network-variant study (quantile, SimBa, LayerNorm,
##   shrink-and-perturb, PFO) on CartPole, Acrobot and the value-scale case; its summaries and
##   plots go next to experiments/modern_variants/networks/README.md (about 60 minutes on 2 cores)
# $(call run_study,FOLDER,NAMES): jppo compare FOLDER/NAME.toml into runs/modern-variants/NAME
#   for each NAME, then its summaries, diagnosis and plots copied into FOLDER/NAME/
define run_study
	for name in $(2); do \
	  rm -rf runs/modern-variants/$$name && \
	  $(VENV)/bin/jppo compare $(1)/$$name.toml --out runs/modern-variants/$$name \
	    --progress lines && \
	  mkdir -p $(1)/$$name && \
	  cp runs/modern-variants/$$name/summary.md runs/modern-variants/$$name/summary.csv \
	     runs/modern-variants/$$name/diagnosis.md runs/modern-variants/$$name/plots/*.png \
	     $(1)/$$name/ || exit 1; \
	done
endef
modern-variants-networks: $(STAMP)
	$(call run_study,experiments/modern_variants/networks,networks acrobot value_scale)

## modern-variants-families: every new variant (networks, critics, policy objectives) with
##   standard PPO, PopArt and symlog + HL-Gauss on SpaceInvaders-MinAtar and
##   brax/inverted_pendulum, 16 seeds; summaries next to experiments/modern_variants/families/
modern-variants-families: $(STAMP)
	$(call run_study,experiments/modern_variants/families,minatar brax)

## modern-variants-case-studies: each case study's setting with the new variants that address
##   its failure beside its own fixes, 16 seeds; summaries next to
##   experiments/modern_variants/case_studies/README.md (about 60 minutes on 2 cores)
modern-variants-case-studies: $(STAMP)
	$(call run_study,experiments/modern_variants/case_studies,value_dominance kl_early_stop frozen_policy value_clip_scale throttled_gradients)

## case-studies: run every experiments/case_studies/*.toml into runs/case-studies/NAME and copy
##   its summary, diagnosis and plots next to its README (about 20 minutes on 2 cores). Options in
##   CASES: CASES='--only kl_early_stop', CASES='--refresh' (re-render existing runs, no training)
CASES ?=
case-studies: $(STAMP)
	$(PY) -m experiments.case_studies.run_all $(CASES)

## diagnosis-benchmark: the development split's labelled runs (injected failure modes and
##   healthy ones) trained, diagnosed and scored on their root causes:
##   experiments/diagnosis_benchmark/results.{json,md} (about 6 minutes on 2 idle cores),
##   then the external-logs section: the committed SB3 / CleanRL fixtures of
##   experiments/external_logs, diagnosed and scored against their labels (seconds; alone:
##   BENCH=--external-only). The sealed test split: BENCH='--split test' (results_test.*);
##   the second sealed split, scored once at the end: BENCH='--split holdout' (results_holdout.*);
##   re-diagnosing saved runs after a rule change: BENCH=--skip-train
BENCH ?=
diagnosis-benchmark: $(STAMP)
	$(PY) -m experiments.diagnosis_benchmark.run $(BENCH)

## published: every published benchmark row that runs on a CPU (classic control, 8 seeds
##   each at the publisher's budget) into experiments/published/results.{json,md}, and the
##   README's table where it has the published-results markers (28 minutes on 2 busy
##   cores). Options in PUBLISHED (default --resume: a stopped or finished row continues):
##   PUBLISHED='--fresh', '--refresh' (tables only), '--only breakout --steps 2e6 --resume'.
##   The GPU rows: experiments/gpu/run_published.sh
PUBLISHED ?= --resume
published: $(STAMP)
	$(PY) -m experiments.published.run $(PUBLISHED)

## mutants: mutation testing of the training core (slow, on demand; not part of test or CI).
##   Settings in pyproject.toml [tool.mutmut]. One module: make mutants MUTANTS='jppo.core.gae.*'.
##   Results are kept in mutants/, so a second run only tests what is left or changed.
##   Prints the surviving mutants; one mutant's diff: $(VENV)/bin/mutmut show NAME
MUTANTS ?=
mutants: $(STAMP)
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,mutation]"
	$(VENV)/bin/mutmut run $(if $(MUTANTS),"$(MUTANTS)")
	$(VENV)/bin/mutmut results | grep -v ': not checked' || true

## clean: remove .venv, runs/, site/ and caches
clean:
	rm -rf $(VENV) runs site .pytest_cache .ruff_cache mutants
