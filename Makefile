# `make test` builds its own virtual environment from nothing and runs the
# whole suite; `make demo` starts a host running the example domains.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

demo: $(STAMP)
	$(BIN)/python -m xl.demo

bench: $(STAMP)
	$(BIN)/python bench/core.py
	$(BIN)/python bench/guests.py
	$(BIN)/python bench/xenstore.py
	$(BIN)/python bench/devices.py
	$(BIN)/python bench/xl.py
	$(BIN)/python bench/top.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis tests/.build
