"""CompressAI 1.2.8 as an independent reference (installed ``--no-deps`` by the Makefile).

Its package ``__init__`` pulls torchvision and dataset tooling, so only the
submodules the tests need are imported, under a bare package object.

CompressAI 1.1.9 (``_matrix{i}`` names, the pmf of <= 1.2.4) cannot share the
venv with 1.2.8: ``make venv`` installs it into ``<venv>/compressai-1.1.9`` and
:func:`run_old` runs code against it in a subprocess.
"""

import importlib
import importlib.util
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

OLD_VERSION = "1.1.9"
OLD_DIR = Path(sys.prefix) / f"compressai-{OLD_VERSION}"


def load():
    """Return (entropy_models module, gdn module, _CXX module) or skip with the reason."""
    if not getattr(sys.modules.get("compressai"), "_bare", False):
        spec = importlib.util.find_spec("compressai")
        if spec is None or not spec.submodule_search_locations:
            pytest.skip("compressai is not installed (make test installs it with --no-deps)")
        package = types.ModuleType("compressai")
        package.__path__ = list(spec.submodule_search_locations)
        package._bare = True
        package.available_entropy_coders = lambda: ["ans"]
        package.get_entropy_coder = lambda: "ans"
        sys.modules["compressai"] = package
    entropy = importlib.import_module("compressai.entropy_models.entropy_models")
    gdn = importlib.import_module("compressai.layers.gdn")
    cxx = importlib.import_module("compressai._CXX")
    return entropy, gdn, cxx


def version() -> str:
    """Version of the CompressAI that :func:`load` imported."""
    load()
    return importlib.import_module("compressai.version").__version__


def run_old(code: str) -> str:
    """Run ``code`` with CompressAI 1.1.9 importable (no download); return its stdout.

    Fails, rather than skips, when 1.1.9 is missing: it is the only reference
    for the tables of checkpoints written by CompressAI <= 1.2.4.
    """
    if not (OLD_DIR / "compressai" / "entropy_models").is_dir():
        pytest.fail(f"CompressAI {OLD_VERSION} is not installed at {OLD_DIR} (the reference for "
                    "checkpoints of CompressAI <= 1.2.4); run `make venv` to install it")
    root = str(Path(__file__).resolve().parents[2])  # tests.helpers is imported from there
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(OLD_DIR), root])}
    prologue = ("from tests.helpers import compressai_ref\n"
                f"assert compressai_ref.version() == {OLD_VERSION!r}, compressai_ref.version()\n")
    result = subprocess.run([sys.executable, "-c", prologue + code], env=env,
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        pytest.fail(f"the CompressAI {OLD_VERSION} reference failed (exit {result.returncode}):\n"
                    f"{result.stderr[-3000:]}")
    return result.stdout
