# The two documented entry points: `make demo` (set up + run the surgical demo end to end) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU build; on a GPU machine use e.g. `make demo TORCH=torch` (any torch>=2.4,<3 works).
TORCH  ?= torch==2.13.0
DEMO   ?= data/demo_surgical

.PHONY: setup demo test
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
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
