"""The target contract: capabilities as data, registered by name (torch-free).

A target module declares one or more :class:`Target` records. ``builder`` and
``runner`` are ``"module:attribute"`` strings imported only when used, so the
registry (and every runner) imports without torch or the vendor SDKs.
"""

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

from sc2deploy.errors import UsageError

MIN_AGREEMENT = {"fp32": 100.0, "fp16": 99.9, "int8": 99.0}  # % symbols equal to torch fp32


@dataclass(frozen=True)
class Target:
    """What a target builds, where, and what it needs."""

    name: str
    precision: str  # "fp32", "fp16" or "int8"
    runtime: str  # what runs the artifact
    builder: str  # "module:function(bundle, options) -> (artifact path, recorded options)"
    runner: str  # "module:Class(bundle, artifact name, threads)"
    build_on: str = "host"  # or "device" (TensorRT engines)
    needs_calibration: bool = False
    build_requires: Tuple[str, ...] = ()  # importable modules needed to build
    run_requires: Tuple[str, ...] = ()  # importable modules needed to run
    description: str = ""
    extra: Dict[str, str] = field(default_factory=dict)

    @property
    def min_agreement(self) -> float:
        return MIN_AGREEMENT[self.precision]

    def missing(self, stage: str = "build") -> Optional[str]:
        """Why this target cannot build (or run) here, or None when it can."""
        needed = self.build_requires if stage == "build" else self.run_requires
        absent = [m for m in needed if importlib.util.find_spec(m) is None]
        if absent:
            return f"{self.name} needs {', '.join(absent)} (not installed)"
        return None

    def load(self, what: str):
        module, _, attribute = getattr(self, what).partition(":")
        return getattr(importlib.import_module(module), attribute)


_REGISTRY: Dict[str, Target] = {}


def register(target: Target) -> Target:
    if target.name in _REGISTRY:
        raise ValueError(f"target {target.name!r} is registered twice")
    if target.precision not in MIN_AGREEMENT:
        raise ValueError(f"target {target.name!r}: unknown precision {target.precision!r}")
    _REGISTRY[target.name] = target
    return target


def targets() -> Dict[str, Target]:
    _load_all()
    return dict(_REGISTRY)


def get_target(name: str) -> Target:
    _load_all()
    if name not in _REGISTRY:
        raise UsageError(f"unknown target {name!r}; known targets: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def _load_all() -> None:
    from sc2deploy.targets import onnx, tensorrt, tflite  # noqa: F401  (they register themselves)
