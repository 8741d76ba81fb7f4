# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The test environment, pinned with hashes (`make lock` refreshes it from pyproject.toml).
LOCK := requirements-dev.lock
PIP_VERSION := 26.3
UV_VERSION := 0.13.8
# pytest-xdist workers for `make check` (auto: one per core).
WORKERS ?= auto
# Outside the checkout: uv for `make lock`, and Python's bytecode (not `__pycache__/` in the
# tree; kept between runs, so the many CLI processes the tests start need not recompile).
CACHE := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/tap-udemy-business
export PYTHONPYCACHEPREFIX := $(CACHE)/pycache
unexport PYTHONDONTWRITEBYTECODE

.PHONY: demo check test lint install lock bench clean

# From the lock only: every package pinned and hash-checked, then the project itself (editable,
# built by the locked hatchling). The last install asks no index: it fails if pyproject.toml
# wants a package or a version that the lock lacks (then run `make lock`).
$(BIN)/tap-udemy-business: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check pip==$(PIP_VERSION)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/pip install --quiet --no-index --no-build-isolation -e . --group dev
	$(BIN)/pip check
	@touch $@

install: $(BIN)/tap-udemy-business

## Refresh the locks after a change to pyproject.toml's dependencies or groups (or to
## requirements-e2e.txt, Meltano's venv): uv (in a venv of its own, outside the tree)
## re-resolves, keeping the other pins; `make lock UPGRADE=1` moves everything to the newest
## releases allowed. Commit the inputs and the locks together.
UV_VENV := $(CACHE)/uv-$(UV_VERSION)
lock:
	test -x $(UV_VENV)/bin/uv || { $(PYTHON) -m venv $(UV_VENV) && \
		$(UV_VENV)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION); }
	$(UV_VENV)/bin/uv pip compile pyproject.toml --group dev --universal --python-version 3.11 \
		--generate-hashes --custom-compile-command "make lock" --quiet \
		$(if $(UPGRADE),--upgrade) -o $(LOCK)
	$(UV_VENV)/bin/uv pip compile requirements-e2e.txt --universal --python-version 3.11 \
		--generate-hashes --custom-compile-command "make lock" --quiet \
		$(if $(UPGRADE),--upgrade) -o requirements-e2e.lock

## The sandbox's data into the embedded database, no credentials needed.
demo: install
	./scripts/demo.sh

## Ruff, ruff format, mypy (the package and the tests) and deptry (imports = dependencies).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/deptry .

## The fast tier (under a minute on two cores): lint, then every test that needs neither the
## network nor PostgreSQL and is not marked `slow` (over about a second), in parallel.
check: lint
	$(BIN)/python -m pytest -m "not network and not postgres and not slow" -n $(WORKERS)

## Everything (what CI runs): lint, then every test, Meltano and PostgreSQL included.
test: lint
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .meltano .pytest_cache .mypy_cache .ruff_cache .hypothesis
