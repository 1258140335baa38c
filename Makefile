# realtime-pose: the two commands a fresh machine needs are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
EXTRAS ?= train,export,view,openvino,dev,cluster,nwb,movement,basler,genicam,aravis
DEMO_SECONDS ?= 20

.PHONY: setup demo test test-fast lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

## setup: create the virtual environment with the runtime, trainer, exporter and dev tools
setup: $(STAMP)

## demo: the live loop on the synthetic camera with the bundled demo model (no camera, no GPU)
demo: $(STAMP)
	$(VENV)/bin/realtime-pose demo --seconds $(DEMO_SECONDS)

## test: the whole test suite (GPU tests skip where there is no GPU)
test: $(STAMP)
	$(PY) -m pytest

## test-fast: everything but the TensorFlow tests
test-fast: $(STAMP)
	$(PY) -m pytest -m "not tf"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## bench: the CPU benchmarks (JSON under benchmarks/results/)
bench: $(STAMP)
	$(PY) benchmarks/peaks.py
	$(PY) benchmarks/engine_latency.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
