# async-reports: `make demo` runs the whole flow locally, `make test` runs the tests.
# Everything installs into .venv from requirements.txt; nothing is needed beyond Python 3.13.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# The Lambda runtime is python3.13. With pyenv, put the newest installed 3.13 next to the current
# version so python3.13 is on PATH (sam build looks for that executable); without pyenv, or with
# PYENV_VERSION already set, nothing changes.
ifndef PYENV_VERSION
PYENV_313 := $(shell pyenv versions --bare 2>/dev/null | grep -E '^3\.13\.[0-9]+$$' | sort -V | tail -1)
ifneq ($(PYENV_313),)
export PYENV_VERSION := $(subst $(eval) ,:,$(strip $(shell pyenv version-name 2>/dev/null) $(PYENV_313)))
endif
endif
export SAM_CLI_TELEMETRY := 0
PYTHON ?= python3.13
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
REQUIREMENTS := requirements.txt src/requirements.txt layers/render/requirements.txt client/pyproject.toml
REGION ?= us-east-1
PYTEST_ARGS ?=

.PHONY: help install test lint format validate build run demo seed bench ci clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(INSTALLED): $(REQUIREMENTS)
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.13 (the Lambda runtime) or set PYTHON=" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

install: $(INSTALLED) ## create .venv with everything (Python 3.13)

test: $(INSTALLED) ## run the whole test suite
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(INSTALLED) ## ruff (lint and format check) and mypy on src/, client/ and local/
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy src client/async_reports_client local

format: $(INSTALLED) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

validate: $(INSTALLED) ## sam validate (with a region), sam validate --lint, cfn-lint
	$(BIN)/sam validate --region $(REGION)
	$(BIN)/sam validate --lint --region $(REGION)
	$(BIN)/cfn-lint template.yaml

build: $(INSTALLED) ## sam build (arm64 packages for the python3.13 runtime)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/sam build

run: $(INSTALLED) ## serve the whole app locally (REST API on :3000) until Ctrl-C
	$(BIN)/python -m local

demo: $(INSTALLED) ## run the whole flow locally over HTTP and save the PDF under out/
	$(BIN)/python -m local.demo

seed: $(INSTALLED) ## load 2020-2022 sample sales into a deployed stack: make seed STACK=async-reports
	$(BIN)/python -m local.seed --stack $(or $(STACK),async-reports)

bench: $(INSTALLED) ## print the benchmark figures (name: value unit)
	@$(BIN)/python bench/run.py

ci: lint validate test build demo ## what .ci/run runs

clean: ## remove build output and caches (keeps .venv)
	rm -rf .aws-sam out .pytest_cache .mypy_cache .ruff_cache
