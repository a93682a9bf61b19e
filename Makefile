# `make demo` and `make test` set everything up on a fresh Debian machine, then run.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel pinned first, so pip never pulls a CUDA build. A Jetson brings its own
# torch: there the venv sees the system packages and this is skipped.
TORCH_SPEC ?= torch==2.13.0
JETSON := $(wildcard /etc/nv_tegra_release)
ifeq ($(JETSON),)
EXTRAS := dev
else
EXTRAS := train,test,jetson
endif
DEMO_OUT ?= out/demo

.PHONY: demo test setup system-deps clean

demo: setup
	$(PY) -m neurorack.demo --out $(DEMO_OUT)

test: setup
	@bash deploy/install-system-deps.sh deploy/apt-packages-test.txt
	$(PY) -m pytest -q firmware_tests

setup: system-deps $(VENV)/.installed

system-deps:
	@bash deploy/install-system-deps.sh

$(VENV)/.installed: pyproject.toml
ifeq ($(JETSON),)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
else
	$(PYTHON) -m venv --system-site-packages $(VENV)
endif
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

clean:
	rm -rf $(VENV) out .pytest_cache
