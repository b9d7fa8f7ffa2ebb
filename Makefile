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
# Python that creates the venv
PYTHON ?= python3
# torch to build against: the local CPU wheel by default; TORCH=2.14.1 is
# the CUDA 13.0 build (see README, Installation)
TORCH ?= 2.13.0
# mmcv's CUDA ops: auto (when torch is a CUDA build and nvcc is found), yes, no
CUDA ?= auto
# TORCH_CUDA_ARCH_LIST for mmcv's CUDA ops, e.g. "8.0;9.0" (default: the
# visible GPUs, else "8.0;9.0+PTX")
CUDA_ARCHS ?=
# more options for tools/install/build_mmcv.py (--jobs N, --force, --verbose,
# --build-dir DIR to resume an interrupted build)
MMCV_BUILD_ARGS ?=

.PHONY: setup test demo lint clean-venv

setup: $(STAMP)

# Order matters: build tools + torch first, then mmcv 2.1.0 from source with
# ops against that torch (no wheel exists for current torch; about 14 min on
# 2 cores for the CPU ops, the wheel is cached in ~/.cache/citymask), then
# everything else. tools/install/build_mmcv.py builds the CUDA ops too when
# torch is a CUDA build and nvcc is found (or says in one line what to set).
$(STAMP): requirements/*.txt setup.cfg setup.py tools/install/build_mmcv.py tools/install/_common.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements/build.txt "torch==$(TORCH)" $(NUMPY_PIN)
	$(PY) tools/install/build_mmcv.py --cuda $(CUDA) \
	  $(if $(CUDA_ARCHS),--archs "$(CUDA_ARCHS)") $(MMCV_BUILD_ARGS)
	$(PIP) install -q -r requirements/runtime.txt -r requirements/mminstall.txt \
	  -r requirements/tests.txt $(NUMPY_PIN)
	$(PIP) install -q --no-build-isolation --no-deps -e .
	$(PY) -c "import citymask, mmdet, mmcv; from mmcv.ops import RoIAlign, nms"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest tests $(PYTEST_ARGS)

# the rehearsal at CPU size: every step of the job by the real tools
demo: $(STAMP)
	$(PY) tools/rehearse.py --work-dir work_dirs/demo

lint: $(STAMP)
	$(PY) -m flake8 citymask tools tests configs
	$(PY) -m isort --check-only --diff citymask tools tests configs
	$(VENV)/bin/codespell citymask tools tests configs docs README.md

clean-venv:
	rm -rf $(VENV)
