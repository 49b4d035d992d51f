# `make demo` and `make test` create or refresh .venv themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.sc2deploy-installed
COMPRESSAI := compressai==1.2.8
# CompressAI 1.1.9 (old parameter names, the <= 1.2.4 tables formula) for the tests; its own folder.
OLD_COMPRESSAI := $(VENV)/compressai-1.1.9
OLD_STAMP := $(OLD_COMPRESSAI)/.sc2deploy-installed

.PHONY: demo test venv demo-ladder arm-check clean

$(STAMP): setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=23.2"
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	# CompressAI is a test reference only: without its deps (it would pull torchvision).
	$(BIN)/pip install --quiet --no-deps $(COMPRESSAI)
	touch $(STAMP)

# Built from its sdist (~20 s; pip fetches setuptools/pybind11 for the build, and caches the wheel).
# The tests import it with PYTHONPATH=$(OLD_COMPRESSAI) and never download anything.
$(OLD_STAMP): | $(STAMP)
	rm -rf $(OLD_COMPRESSAI)
	$(BIN)/pip install --quiet --no-deps --target $(OLD_COMPRESSAI) compressai==1.1.9
	touch $(OLD_STAMP)

venv: $(STAMP) $(OLD_STAMP)

demo: $(STAMP)
	$(BIN)/sc2deploy demo --out build/demo

test: $(STAMP) $(OLD_STAMP)
	$(BIN)/python -m pytest

# The device runtime on aarch64 under qemu-user (cortex-a72, cortex-a76): same bytes as here.
# Needs the host packages qemu-user-static and gcc-aarch64-linux-gnu; work folder build/arm.
arm-check: $(STAMP)
	$(BIN)/python -m sc2deploy.orchestrate.emulation.arm_check $(ARM_CHECK_ARGS)

# Retrain the demo's teacher and its beta ladder of students from nothing (~58 min on 2 cores):
# sc2deploy/data/demo_teacher.onnx and sc2deploy/data/demo_ladder/demo-beta*.pt, each written
# as it is done (DEMO_LADDER_ARGS=--resume reuses build/demo-ladder/teacher.pt and finished points).
demo-ladder: $(STAMP)
	$(BIN)/python scripts/train_demo_ladder.py $(DEMO_LADDER_ARGS)

clean:
	rm -rf build $(VENV)
