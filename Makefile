# Every target installs what it needs into .venv first (Python >= 3.10).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[examples,test]"
	rm -f $(VENV)/.installed-* && touch $@

## The main job: Adam, AdamW and AdamAR on the embedded synthetic dataset (CPU, minutes).
demo: $(STAMP)
	$(PY) -m examples.ctr --config demo

## Lint, then every test and doctest (long experiments are marked slow: make test PYTEST_ARGS="-m slow").
test: $(STAMP) lint
	$(PY) -m pytest -q -n 2 -m "not slow" $(PYTEST_ARGS)

## Optimizer step vs table size (dense optax vs AdamAR vs the sparse path), a few minutes.
bench: $(STAMP)
	PYTHONPATH=. $(PY) benchmarks/optimizer_step.py --quick

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV)
