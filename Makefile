# `make demo` and `make test` set up .venv on first use, then reuse it.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.citymask-setup
PYTEST_ARGS ?=
# numpy series to install instead of the newest (e.g. `make test NUMPY=1.26
# VENV=.venv-np126` proves the numpy 1.x support)
NUMPY ?=
NUMPY_PIN := $(if $(NUMPY),"numpy==$(NUMPY).*",)

.PHONY: setup test demo lint clean-venv

setup: $(STAMP)

# Order matters: build tools + torch + numpy<2 first, then mmcv 2.1.0 from
# source with ops against that torch (no wheel exists for torch 2.13; ~14 min
# on 2 cores the first time, pip caches the wheel), then everything else.
# With nvcc and a CUDA build of torch, the CUDA ops are built too.
$(STAMP): requirements/*.txt setup.cfg setup.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements/build.txt $(NUMPY_PIN)
	if ! $(PY) -c "import mmcv.ops" 2>/dev/null || \
	   ! $(PIP) show mmcv 2>/dev/null | grep -q '^Version: 2.1.0$$'; then \
	  if command -v nvcc >/dev/null && $(PY) -c "import torch,sys; sys.exit(torch.version.cuda is None)"; then \
	    export FORCE_CUDA=1; fi; \
	  MMCV_WITH_OPS=1 $(PIP) install --no-build-isolation \
	    -c requirements/runtime.txt mmcv==2.1.0; \
	fi
	$(PIP) install -q -r requirements/runtime.txt -r requirements/mminstall.txt \
	  -r requirements/tests.txt $(NUMPY_PIN)
	$(PIP) install -q --no-build-isolation --no-deps -e .
	$(PY) -c "import citymask, mmdet, mmcv; from mmcv.ops import RoIAlign, nms"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest tests $(PYTEST_ARGS)

demo: $(STAMP)
	PYTHON=$(PY) bash tools/demo.sh

lint: $(STAMP)
	$(PY) -m flake8 citymask tools tests configs
	$(PY) -m isort --check-only --diff citymask tools tests configs
	$(VENV)/bin/codespell citymask tools tests configs docs README.md

clean-venv:
	rm -rf $(VENV)
