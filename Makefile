# Spool's developer entry points. `make test` bootstraps everything it needs on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Lambda runs Python 3.13; the project venv uses the same minor version. uv must not download Pythons.
PY313 ?= $(shell ls -d $$(pyenv root 2>/dev/null || echo /nonexistent)/versions/3.13*/bin/python3.13 2>/dev/null | tail -1 || true)
PY313 := $(or $(PY313),$(shell command -v python3.13))
export UV_PYTHON_DOWNLOADS := never
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp-$(shell cat requirements.lock pyproject.toml | sha1sum | cut -c1-12)
NODE_STAMP := node_modules/.stamp-$(shell cat package.json package-lock.json 2>/dev/null | sha1sum | cut -c1-12)

.PHONY: help bootstrap lock lock-localstack lint fmt typecheck test test-unit test-integration test-infra \
        test-deployed test-localstack test-manifests dev dev-localstack synth bench soak fuzz soak-hostile openapi clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@command -v uv >/dev/null || python3 -m pip install -q 'uv>=0.9'
	@test -n "$(PY313)" || { echo "Python 3.13 not found (pyenv install 3.13 or put python3.13 on PATH)"; exit 1; }
	uv venv -q --allow-existing --python "$(PY313)" $(VENV)
	uv pip sync -q --python $(PY) --require-hashes requirements.lock
	uv pip install -q --python $(PY) --no-deps -e .
	@rm -f $(VENV)/.stamp-* && touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@rm -f node_modules/.stamp-* && touch $@

bootstrap: $(STAMP) $(NODE_STAMP) ## install Python deps (from the lockfile) and the CDK CLI

lock: ## re-resolve dependencies and rewrite requirements.lock and functions/requirements*.txt
	uv lock --python "$(PY313)"
	uv export -q --format requirements-txt --no-emit-project --all-groups -o requirements.lock
	uv export -q --format requirements-txt --no-emit-project --no-default-groups --no-hashes -o functions/requirements.txt
	uv export -q --format requirements-txt --no-emit-project --no-default-groups --only-group parquet --no-hashes -o functions/requirements-parquet.txt

lock-localstack: ## re-resolve LocalStack's venv (localstack/requirements.txt) into localstack/requirements.lock
	uv pip compile -q --python-version 3.13 --python-platform x86_64-unknown-linux-gnu --generate-hashes \
	  --custom-compile-command "make lock-localstack" localstack/requirements.txt -o localstack/requirements.lock

lint: $(STAMP) ## ruff lint + format check, mypy on functions/ and infra/
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy functions/spool infra

fmt: $(STAMP) ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: bootstrap lint ## everything CI runs: lint, unit, integration, infra, reliability (side by side), deployed stack
	PY=$(PY) bash scripts/test-tiers.sh
	$(MAKE) test-deployed

test-unit: $(STAMP) ## pure tests with in-memory fakes
	$(PY) -m pytest -q tests/unit

test-integration: $(STAMP) ## moto server, SeaweedFS and the local runtime over real HTTP
	$(PY) -m pytest -q tests/integration

test-infra: bootstrap ## CDK assertions, cfn-lint, cdk-nag
	$(PY) -m pytest -q tests/infra

test-deployed: bootstrap ## deploy the real stack into MiniStack, drive it, tear it down
	bash scripts/test-deployed.sh

test-localstack: $(STAMP) ## the integration tier on LocalStack (host mode, no Docker), started per session
	bash localstack/serve.sh install
	$(PY) -m pytest -q -rs --emulator=localstack tests/integration

dev: $(STAMP) ## run Spool locally: embedded AWS, API on 127.0.0.1:3000, SQS pollers
	$(PY) -m spool.local

dev-localstack: $(STAMP) ## run Spool locally against LocalStack on 127.0.0.1:4566 (host mode, no Docker)
	bash localstack/dev.sh

synth: bootstrap ## synthesize the CDK app offline into cdk.out/
	cdk synth --quiet

bench: $(STAMP) ## benchmarks; figures to .bench/results.json
	$(PY) -m bench

test-manifests: $(STAMP) ## the sealed-partitions test at the issue's length: two minutes of events, every folder sealed
	SPOOL_MANIFEST_SECONDS=120 $(PY) -m pytest -q tests/reliability/test_manifests.py

soak: $(STAMP) ## sustained ingest through the local runtime (300 events/s for 60 s, 20 endpoints)
	$(PY) -m tests.reliability.soak

soak-hostile: $(STAMP) ## the soak beside a tenant whose store drips its answer and one whose store refuses (issue 20)
	$(PY) -m tests.reliability.soak_hostile

fuzz: $(STAMP) ## long schemathesis run against the served OpenAPI document
	SPOOL_FUZZ_EXAMPLES=500 $(PY) -m pytest -q tests/reliability/test_fuzz.py

openapi: $(STAMP) ## regenerate docs/openapi.json from the models
	$(PY) -m spool.handlers.api openapi > docs/openapi.json

clean: ## remove build and test output
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache .bench
