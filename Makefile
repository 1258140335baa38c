# realtime-pose: the two commands a fresh machine needs are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
EXTRAS ?= train,export,view,openvino,dev,cluster,nwb,movement,basler,genicam,aravis,calibrate
# aniposelib without its opencv-contrib-python (see the calibrate extra in pyproject.toml)
ANIPOSELIB ?= aniposelib==0.8.0
DEMO_SECONDS ?= 20
# a second environment for importing DeepLabCut 3 (PyTorch) models and checking them against
# DeepLabCut-Live: PyTorch, DeepLabCut 3 and DeepLabCut-Live (numpy<2), ~6.8 GB
DLC3_VENV ?= .venv-dlc3
DLC3_STAMP := $(DLC3_VENV)/.installed-stamp
DLC3_TESTS := tests/exporters/test_dlc3_import.py tests/exporters/test_dlc3_source.py \
	tests/core/test_light_install.py tests/core/test_bundle.py tests/inference/test_peaks.py \
	tests/formats/test_labeled_data_dlc3.py

.PHONY: setup demo test test-fast test-dlc3 dlc3-env lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	$(PY) -m pip install --quiet --no-deps "$(ANIPOSELIB)"
	touch $(STAMP)

## setup: create the virtual environment with the runtime, trainer, exporter and dev tools
setup: $(STAMP)

## demo: the live loop on the synthetic camera with the bundled demo model (no camera, no GPU)
demo: $(STAMP)
	$(VENV)/bin/realtime-pose demo --seconds $(DEMO_SECONDS)

## test: the whole test suite (GPU tests skip where there is no GPU)
test: $(STAMP)
	$(PY) -m pytest

$(DLC3_STAMP): pyproject.toml
	$(PYTHON) -m venv $(DLC3_VENV)
	$(DLC3_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(DLC3_VENV)/bin/python -m pip install --quiet -e ".[export,dev,dlc3,dlc3-check]"
	touch $(DLC3_STAMP)

## dlc3-env: the DeepLabCut 3 environment (.venv-dlc3: the dlc3 and dlc3-check extras)
dlc3-env: $(DLC3_STAMP)

## test-dlc3: the DeepLabCut 3 import tests, cross-checked against DeepLabCut-Live, in .venv-dlc3
test-dlc3: $(DLC3_STAMP)
	$(DLC3_VENV)/bin/python -m pytest -p no:cacheprovider $(DLC3_TESTS)

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
	rm -rf $(VENV) $(DLC3_VENV) build *.egg-info .pytest_cache .ruff_cache
