# The two commands of the README: `make demo` (main job) and `make test`.
# `make test JUNIT=path` also writes pytest's JUnit XML report there (.ci/run checks it).
VENV := .venv
BIN := $(VENV)/bin

.PHONY: deps demo test lint unit fuzz bench up status down purge

deps:
	scripts/install-deps.sh

demo: deps
	$(BIN)/kuryr stack up
	$(BIN)/python -m kuryr.stack.demo

lint: deps
	$(BIN)/ruff check kuryr tests bench
	$(BIN)/ruff format --check kuryr tests bench
	$(BIN)/mypy

unit: deps
	$(BIN)/pytest -q tests/unit

test: lint
	$(BIN)/pytest -q -ra $(if $(JUNIT),--junitxml=$(JUNIT)) --ignore=tests/fuzz tests

# The live-network fuzz (minutes; on demand until its port-count flake is understood).
fuzz: deps
	$(BIN)/pytest -q -ra tests/fuzz

bench: deps
	$(BIN)/kuryr stack up
	$(BIN)/python -m bench

up: deps
	$(BIN)/kuryr stack up

status:
	$(BIN)/kuryr stack status

down:
	$(BIN)/kuryr stack down

purge:
	$(BIN)/kuryr stack down --purge
