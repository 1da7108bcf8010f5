# Every target installs what it needs into .venv first (Python >= 3.10).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: demo test test-isa test-min lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[examples,test]"
	rm -f $(VENV)/.installed-* && touch $@

## The main job: Adam, AdamW and AdamAR on the embedded synthetic dataset (CPU, minutes).
demo: $(STAMP)
	$(PY) -m examples.ctr --config demo

## Lint, then every test and doctest (long experiments are marked slow: make test PYTEST_ARGS="-m slow"),
## then the numerics-heavy tests again on a second XLA:CPU code path (test-isa).
test: $(STAMP) lint
	$(PY) -m pytest -q -n 2 -m "not slow" $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-isa

## The numerics-heavy tests with XLA:CPU limited to SSE4.2 (no AVX, no FMA:
## other vector widths and roundings), so that a test relying on one CPU's
## rounding fails here rather than on someone else's machine (about 1 min).
ISA_FLAGS ?= --xla_cpu_max_isa=SSE4_2
ISA_TESTS := tests/test_alias.py tests/test_lazy_adam.py \
  tests/test_interval_decay.py tests/test_sparse.py tests/test_sharded_sparse.py \
  tests/test_candidate_rows.py tests/test_sharding.py tests/test_pmap.py \
  tests/examples/models/test_models_layers.py \
  tests/examples/runner/test_runner_sparse.py::test_sparse_matches_dense_runner
test-isa: $(STAMP)
	XLA_FLAGS="$(ISA_FLAGS)" $(PY) -m pytest -q -n 2 -m "not slow" $(ISA_TESTS)

## The core tests (tests/test_*.py and optax_ar's doctests) in a separate venv
## holding exactly the minimum jax and optax that pyproject.toml states.
MIN_VENV ?= .venv-min
MIN_PY := $(MIN_VENV)/bin/python
JAX_MIN := $(shell sed -n 's/^ *"jax>=\([0-9.]*\)",*$$/\1/p' pyproject.toml)
OPTAX_MIN := $(shell sed -n 's/^ *"optax>=\([0-9.]*\)",*$$/\1/p' pyproject.toml)
# Test-only: the orbax-checkpoint release of the same time as the minimum jax.
ORBAX_FOR_MIN ?= 0.11.15
MIN_STAMP := $(MIN_VENV)/.installed-jax$(JAX_MIN)-optax$(OPTAX_MIN)

$(MIN_STAMP): pyproject.toml
	$(PYTHON) -m venv $(MIN_VENV)
	$(MIN_PY) -m pip install --quiet --upgrade pip
	$(MIN_PY) -m pip install --quiet "jax==$(JAX_MIN)" "jaxlib==$(JAX_MIN)" \
	  "optax==$(OPTAX_MIN)" "orbax-checkpoint==$(ORBAX_FOR_MIN)" pytest
	rm -f $(MIN_VENV)/.installed-* && touch $@

test-min: $(MIN_STAMP)
	$(MIN_PY) -c "import jax, optax; print('jax', jax.__version__, 'optax', optax.__version__)"
	$(MIN_PY) -m pytest -q tests/test_*.py optax_ar $(PYTEST_ARGS)

## Optimizer step vs table size (dense optax vs AdamAR vs the sparse path), a few minutes.
bench: $(STAMP)
	PYTHONPATH=. $(PY) benchmarks/optimizer_step.py --quick

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV)
