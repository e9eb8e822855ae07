# Every target does its own setup: a fresh machine with only Python 3.11 needs nothing else.
# torch==2.13.0 is installed first and pinned: that pin takes the CPU wheel on this machine's disk;
# any other request pulls a multi-GB CUDA build.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS ?= dev,math,plots,tb,data,peft
TORCH_PIN := torch==2.13.0

.PHONY: setup quickstart test test-slow test-ray lint format bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_PIN)
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]" $(TORCH_PIN)
	touch $(STAMP)

setup: $(STAMP)

quickstart: $(STAMP)
	$(BIN)/reasonrl quickstart

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

test-ray: $(STAMP)  # the Ray backend (pip install -e '.[ray]' first)
	$(BIN)/python -m pytest -q -m ray tests/distributed_ray

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
