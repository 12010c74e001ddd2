# The two commands of the README: `make demo` (main job) and `make test`.
# `make test JUNIT=path` also writes pytest's JUnit XML report there (.ci/run checks it).
VENV := .venv
BIN := $(VENV)/bin

.PHONY: deps demo test lint unit fuzz bench up status down purge plugin wheel

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
	$(BIN)/pytest -q -ra $(if $(JUNIT),--junitxml=$(JUNIT)) tests

# The live-network fuzz alone (part of `test` too; 1-5 min on the shared test machine).
fuzz: deps
	$(BIN)/pytest -q -ra tests/fuzz

bench: deps
	$(BIN)/kuryr stack up
	$(BIN)/python -m bench

# The managed Docker plugin (README: Managed plugin): config.json and rootfs/ in
# /var/lib/kuryr-stack/plugin/bundle, for `docker plugin create`; PLUGIN_DIR=... builds elsewhere.
plugin: deps
	$(BIN)/python -m kuryr.stack.plugin_build $(if $(PLUGIN_DIR),--dir $(PLUGIN_DIR))

# The wheel `pip install` takes (README: Install): dist/kuryr-<version>-py3-none-any.whl, with
# the example config and the systemd unit it installs under <prefix>/share/kuryr. build/ goes
# first: setuptools would carry a module since deleted from an old build/lib into the wheel.
wheel: deps
	rm -rf build
	$(BIN)/pip wheel --no-deps -w dist .

up: deps
	$(BIN)/kuryr stack up

status:
	$(BIN)/kuryr stack status

down:
	$(BIN)/kuryr stack down

purge:
	$(BIN)/kuryr stack down --purge
