"""CompressAI 1.2.8 as an independent reference (installed ``--no-deps`` by the Makefile).

Its package ``__init__`` pulls torchvision and dataset tooling, so only the
submodules the tests need are imported, under a bare package object.
"""

import importlib
import importlib.util
import sys
import types

import pytest


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
