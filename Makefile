# Two entry points: `make run` (set up, then run the whole pipeline) and
# `make test` (set up, then lint and run the default test suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
# Stage commands in dvc.yaml call `python`: make it the environment's.
export PATH := $(BIN):$(PATH)
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install run test test-slow lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is needed, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install
	dvc repro

test: install
	ruff check .
	python -m pytest

test-slow: install
	python -m pytest -m slow

bench: install
	python -m bench.fit_speed

lint: install
	ruff check .

clean:
	rm -rf $(VENV)
