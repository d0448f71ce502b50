# Two set-up commands: `make demo` and `make test`. Both create .venv when missing.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
SHARED := $(abspath ../shared/datasets)
export DENSESCALE_DATA_DIR ?= $(if $(wildcard $(SHARED)),$(SHARED),)

.PHONY: venv demo test lint bench clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[test]"
	touch $@

venv: $(BIN)/.installed

demo: venv
	$(BIN)/densescale demo

lint: venv
	$(BIN)/ruff check densescale tests bench

test: venv
	$(BIN)/python -m pytest -q tests

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
