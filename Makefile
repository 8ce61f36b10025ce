# Two entry points for a fresh Linux machine (see README): `make demo` and `make test`.
# Everything lives in .venv (Python 3.11, torch 2.14.1 from the local wheel cache or PyPI).
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
TORCH_SPEC ?= torch==2.14.1

.PHONY: install demo test test-fast browser cuda-build cxx17-check gpu-check lint clean

$(VENV)/.installed: pyproject.toml setup.py $(wildcard csrc/*/*.cpp csrc/include/le3d/*.h csrc/*.cpp)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q "$(TORCH_SPEC)" ninja numpy
	$(PIP) install -q --no-build-isolation -e ".[dev]"
	touch $@

install: $(VENV)/.installed  ## set up .venv with le3d, its C++ extension and dev tools

demo: install  ## synthesise a dark RAW scene, train it on CPU, render and evaluate
	$(VENV)/bin/le3d demo

browser:  ## Debian's Chromium for the viewer's browser tests (needs root)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium)

test: install browser  ## the whole test suite (CUDA tests skip without a GPU)
	$(PY) -m pytest -q

test-fast: install  ## the suite without tests marked slow
	$(PY) -m pytest -q -m "not slow"

cuda-build: install  ## compile every .cu file with nvcc (no GPU needed)
	scripts/build_cuda.sh $(PY)

cxx17-check: install  ## the C++ sources parse as C++17 (the GPU machines' torch builds extensions as C++17)
	scripts/check_cxx17.sh $(PY)

gpu-check: install  ## on a GPU machine: build CUDA, CUDA-vs-reference tests, GPU benchmarks
	scripts/gpu_check.sh

lint: install
	$(VENV)/bin/ruff check le3d convex_splat viewer scripts tests

clean:
	rm -rf $(VENV) build *.egg-info le3d/_C*.so
