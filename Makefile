# Two commands on a fresh machine that has only python3: `make demo` and `make test`.
# uv comes from PyPI into .tools/ (pinned); the project's dependencies come from uv.lock, frozen.

PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Write every installed module's bytecode at install time, as pip does: uv does not by
# default, and where Python may not write it at import either (PYTHONDONTWRITEBYTECODE, a
# read-only install) every `etl` start compiles its libraries from source: 0.8 s against 0.4 s.
export UV_COMPILE_BYTECODE := 1

.PHONY: setup test test-fast test-all demo lint bench clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) uv.lock pyproject.toml Makefile
	$(UV) sync --frozen --inexact --python $(PYTHON)
	touch $@

setup: $(VENV)/.synced

# The report's browser test drives Debian's chromium (Playwright's own browser download is
# never used: `playwright install` fetches from outside the package registries).
CHROMIUM := /usr/bin/chromium
$(VENV)/.chromium: | $(VENV)/.synced
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "make: $(CHROMIUM) is missing and installing it needs root: run 'sudo apt-get install -y chromium' once" >&2; \
	    exit 1; \
	  fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	fi
	touch $@

test: setup $(VENV)/.chromium
	$(VENV)/bin/pytest -q

test-all: setup $(VENV)/.chromium
	$(VENV)/bin/pytest -q -m "slow or not slow"

# The suite without the `slow` marker (kill loop, 1,000-example property runs): for quick checks.
test-fast: setup $(VENV)/.chromium
	$(VENV)/bin/pytest -q -m "not slow"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

demo: setup
	$(VENV)/bin/python -m etl demo

bench: setup
	$(UV) sync --frozen --inexact --python $(PYTHON) --group bench
	$(VENV)/bin/python -m bench

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache warehouse.duckdb*
