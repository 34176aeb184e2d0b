# capsight: `make demo` and `make test` do everything on a fresh machine.
#
#   make demo    create .venv, install capsight with its extras, analyse the bundled sample video
#   make test    install if needed, run the test suite
#   make lint    ruff
#   make bench   the speed benchmark (writes nothing; copy its table into docs/speed.md)
#   make serve   the HTTP API and web UI (capsight serve)
#
# Installing runs once: it leaves a stamp in .venv and runs again only when pyproject.toml changes.

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.capsight-installed
EXTRAS ?= dev,train,serve,bench,lite12
TORCH_VERSION ?= 2.13.0
SAMPLE := src/capsight/data/sample.mp4
DEMO_OUT ?= out/demo

.PHONY: all demo test lint serve bench install clean

all: demo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first and pinned: a bare `torch` from the index would pull several GB of CUDA packages.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install -e ".[$(EXTRAS)]"
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/capsight video $(SAMPLE) --out $(DEMO_OUT)
	@echo
	@echo "Open the report: file://$(abspath $(DEMO_OUT))/report.html"

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts

bench: $(STAMP)
	$(BIN)/python benchmarks/speed.py

serve: $(STAMP)
	$(BIN)/capsight serve

clean:
	rm -rf out/demo .pytest_cache .ruff_cache
