# `make demo` and `make test` set everything up on a fresh Debian machine, then run.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch: the CPU-only build, never a CUDA one; a Jetson's own (deploy/make-venv.sh says how).
export TORCH_SPEC ?= torch==2.13.0
DEMO_OUT ?= out/demo

.PHONY: demo test setup system-deps clean check-arm64

demo: setup
	$(PY) -m neurorack.demo --out $(DEMO_OUT)

test: setup
	@bash deploy/install-system-deps.sh deploy/apt-packages-test.txt
	$(PY) -m pytest -q firmware_tests

setup: system-deps $(VENV)/.installed

system-deps:
	@bash deploy/install-system-deps.sh

$(VENV)/.installed: pyproject.toml setup.py deploy/make-venv.sh
	bash deploy/make-venv.sh $(PYTHON) $(VENV)
	touch $@

# deploy/install.sh on an emulated Raspberry Pi (debootstrap, qemu-user-static; root): slow,
# not part of `make test`. The arm64 root is built once and kept in $(ARM64_CACHE).
ARM64_CACHE ?= build/arm64
check-arm64:
	ARM64_CACHE=$(ARM64_CACHE) bash deploy/check-arm64.sh

clean:
	rm -rf $(VENV) out .pytest_cache
