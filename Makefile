# Two set-up commands: `make demo` and `make test`. Both create .venv when missing.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
SHARED := $(abspath ../shared/datasets)
export DENSESCALE_DATA_DIR ?= $(if $(wildcard $(SHARED)),$(SHARED),)

.PHONY: venv demo test lint browser postgres bench clean

# The report test renders the HTML report in headless Chromium. `make browser` finds one (PATH,
# then Playwright's own), else installs one: `playwright install chromium` where the network
# allows it, else the Debian package. It records the path in $(VENV)/.chromium for the tests.
PLAYWRIGHT_INSTALL ?= $(BIN)/playwright install chromium
APT_INSTALL ?= apt-get install -y -q chromium || (apt-get update -q && apt-get install -y -q chromium)
define FIND_PLAYWRIGHT_CHROMIUM
import os
from playwright.sync_api import sync_playwright
with sync_playwright() as p:
    path = p.chromium.executable_path
print(path if os.path.exists(path) else "")
endef
export FIND_PLAYWRIGHT_CHROMIUM

# torch first: the CPU build known to work. pyproject.toml allows torch>=2.3,<2.14, so the
# editable install keeps it (no CUDA wheel download); set TORCH= to keep an existing install.
TORCH ?= torch==2.13.0

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(if $(TORCH),$(BIN)/pip install -q "$(TORCH)")
	$(BIN)/pip install -q -e ".[test]"
	touch $@

venv: $(BIN)/.installed

demo: venv
	$(BIN)/densescale demo

lint: venv
	$(BIN)/ruff check densescale tests bench

browser: venv
	@path="$$(command -v chromium || command -v chromium-browser || true)"; \
	[ -n "$$path" ] || path="$$($(BIN)/python -c "$$FIND_PLAYWRIGHT_CHROMIUM" 2>/dev/null)"; \
	if [ -z "$$path" ]; then \
	  echo "browser: no Chromium found; trying: $(PLAYWRIGHT_INSTALL)"; \
	  if $(PLAYWRIGHT_INSTALL) >/dev/null 2>&1; then \
	    path="$$($(BIN)/python -c "$$FIND_PLAYWRIGHT_CHROMIUM" 2>/dev/null)"; \
	  else \
	    echo "browser: that failed (no network to the Playwright CDN?); trying the Debian package"; \
	    if ($(APT_INSTALL)) >/dev/null 2>&1; then path="$$(command -v chromium || true)"; fi; \
	  fi; \
	fi; \
	if [ -n "$$path" ]; then \
	  echo "browser: using $$path"; echo "$$path" > $(VENV)/.chromium; \
	else \
	  rm -f $(VENV)/.chromium; \
	  echo "browser: could not find or install Chromium; the report rendering test will fail" >&2; \
	fi

# tests/study/test_postgres.py starts a throw-away PostgreSQL server (initdb + pg_ctl). `make
# postgres` finds its binaries, else installs the Debian package (as root, where apt works).
PG_APT ?= DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql
postgres:
	@if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; \
	then echo "postgres: found initdb"; \
	else \
	  echo "postgres: no PostgreSQL server binaries; trying the Debian package postgresql"; \
	  if ($(PG_APT) >/dev/null 2>&1) || (apt-get update -q >/dev/null 2>&1 && $(PG_APT) >/dev/null 2>&1); \
	  then echo "postgres: installed"; \
	  else echo "postgres: could not install it; tests/study/test_postgres.py will fail" >&2; fi; \
	fi

test: venv browser postgres lint
	DENSESCALE_CHROMIUM="$$(cat $(VENV)/.chromium 2>/dev/null)" $(BIN)/python -m pytest -q tests

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
