# One command sets up and runs the main job (`make plan`), one runs the tests (`make test`).
SHELL := /bin/bash
STACK ?= staging
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := python3 -m uv
endif
# Bytecode compiled once at install: pulumi-aws is large, and this machine sets PYTHONDONTWRITEBYTECODE.
export UV_COMPILE_BYTECODE := 1

.PHONY: setup plan test lint bench schema local

setup: .venv/.synced

.venv/.synced: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen
	@touch $@

plan: setup  ## the offline plan of a stack (STACK=staging by default)
	.venv/bin/platformctl plan $(STACK)

lint: setup
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy
	$(UV) run --frozen deptry .
# The policy pack on its own, against its requirements.txt (pulumi is pinned there to match the program's).
	cd policy && ../.venv/bin/deptry . --requirements-files requirements.txt --known-first-party rules \
		--per-rule-ignores DEP002=pulumi

test: lint  ## lint, type-check and run every test
	$(UV) run --frozen pytest -q

bench: setup
	$(UV) run --frozen python bench/plan.py

schema: setup  ## regenerate the editor schema of the stack files
	.venv/bin/platformctl schema -o schema/stack-config.schema.json

local: setup  ## the bundled app locally: moto, queues, migrations, API, relay, worker, stub (Ctrl-C stops all)
	.venv/bin/platformctl local up
