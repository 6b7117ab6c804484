# The two documented entry points: `make demo` (set up + run the surgical demo end to end) and `make test`.
# For contributors: `make test-fast` (the fast subset), `make lint` (ruff), `make docs` (the site, strict links),
# `make coverage-fast` (the fast subset under coverage: which modules it leaves unexercised).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU build; on a GPU machine use e.g. `make demo TORCH=torch` (any torch>=2.4,<3 works).
TORCH  ?= torch==2.13.0
DEMO   ?= data/demo_surgical

# every marker by cost (pyproject.toml [tool.pytest.ini_options] markers) is left out of the fast subset
FAST   := not slow and not wheel and not browser and not distributed and not benchmark and not server

.PHONY: setup demo test test-fast lint docs coverage-fast
setup: $(VENV)/.installed

# .[test] holds every extra (hvl[all]) and the tools: what both `make demo` and `make test` need
$(VENV)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check "$(TORCH)"
	$(BIN)/pip install -q --disable-pip-version-check -e ".[test]"
	touch $@

demo: setup
	$(BIN)/hvl demo surgical --out $(DEMO)
	$(BIN)/hvl fit --config recipes/surgical/demo_pretrain.yaml
	$(BIN)/hvl zeroshot --config recipes/surgical/demo_zeroshot.yaml --ckpt checkpoints/surgical_demo/best.ckpt --json metrics.json

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "$(FAST)"

lint: setup
	$(BIN)/ruff check .

docs: setup
	$(BIN)/mkdocs build --strict --site-dir site

coverage-fast: setup
	$(BIN)/python -m coverage run --source=core,domains -m pytest -q -m "$(FAST)"
	$(BIN)/python tests/fast_coverage.py
