# mmookd developer entry points. Every target installs what it needs first
# (scripts/install.sh is idempotent: seconds when the venv is complete).
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
export TORCH_SPEC VENV

.PHONY: install demo test lint format clean-data

install:
	bash scripts/install.sh

# The main job: generate ToyVIS, train on it, evaluate, print the AP table.
demo: install
	$(PY) tools/toy_pipeline.py $(DEMO_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/yapf --diff --recursive mmookd tools tests configs

format: install
	$(VENV)/bin/ruff check --select I --fix .
	$(VENV)/bin/yapf -i --recursive mmookd tools tests configs

test: install lint
	bash scripts/install_test_videos.sh
	$(VENV)/bin/python -m pytest -q $(PYTEST_ARGS)
