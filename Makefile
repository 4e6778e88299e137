# drift_nb: the single entry point. `make reproduce` and `make test` are all a newcomer needs.
PYTHON  ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.drift_nb-installed
PROFILE ?= cpu
JOBS    ?= 1

.PHONY: help venv reproduce train train-missing models test sync-check nbtest pytest docs docs-quarto clean

help:
	@echo "make reproduce   create .venv if missing, run every report at PROFILE=$(PROFILE) (committed weights in models/ are loaded, not retrained)"
	@echo "make train       retrain every model spec at PROFILE=$(PROFILE) into models/, JOBS=$(JOBS) at once (a killed one continues with: drift-nb train NAME --resume)"
	@echo "make train-missing  train only the specs with no entry for their configuration yet (JOBS=2 on a 2-core machine)"
	@echo "make models      list the model specs, where their weights are and whether they still match the code"
	@echo "make test        create .venv if missing, export sync check, nbdev-test, pytest, docs build"
	@echo "make docs        build the offline docs site into docs/ (no Quarto needed)"
	@echo "make docs-quarto nbdev-docs, for machines with Quarto"

# The environment: created once, refreshed when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (drift_nb .venv)"
	touch $(STAMP)

venv: $(STAMP)

reproduce: $(STAMP)
	$(BIN)/drift-nb reproduce --profile $(PROFILE)

train: $(STAMP)
	$(BIN)/drift-nb train --all --profile $(PROFILE) --jobs $(JOBS)

train-missing: $(STAMP)
	$(BIN)/drift-nb train --all --missing --profile $(PROFILE) --jobs $(JOBS)

models: $(STAMP)
	$(BIN)/drift-nb models

test: sync-check nbtest pytest docs

# The package must be exactly what the notebooks export.
sync-check: $(STAMP)
	@rm -rf .sync-check && cp -r drift_nb .sync-check
	@$(BIN)/nbdev-export
	@if diff -r -x __pycache__ .sync-check drift_nb; then rm -rf .sync-check; echo "sync-check: drift_nb/ equals the notebooks' export"; \
	 else rm -rf .sync-check; echo "sync-check FAILED: drift_nb/ differed from what nbs/ exports (diff above)."; \
	      echo "Edit the notebooks, run nbdev-export, and commit both."; exit 1; fi

# Tests pin torch to one thread per worker (two workers on two cores); notebooks opened in JupyterLab
# and `import drift_nb` use torch's default, every core. Report runs take their profile's `threads`.
TEST_THREADS := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

nbtest: $(STAMP)
	$(TEST_THREADS) $(BIN)/nbdev-test --n-workers 2

pytest: $(STAMP)
	$(TEST_THREADS) $(BIN)/python -m pytest -q -n 2 --dist worksteal --durations=15

docs: $(STAMP)
	$(BIN)/drift-nb docs

docs-quarto: $(STAMP)
	$(BIN)/nbdev-docs

clean:
	rm -rf _proc .sync-check papermill_runs/_staging papermill_runs/_failed papermill_runs/_interactive
