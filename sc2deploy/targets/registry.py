"""The target contract: one :class:`Target` record per target, capabilities as data (torch-free).

Each module named in ``TARGET_MODULES`` (``sc2deploy/targets/<name>.py``) declares
``TARGETS``, a tuple of records; the registry registers them, checked, the first time a
target is asked for. ``builder`` and ``runner`` are ``"module:attribute"`` strings imported
only when used, so the registry (and every runner) imports without torch or a vendor SDK::

    builder(bundle, options: BuildOptions, calibration: inputs or None, stage: Path)
        -> (artifact path, options to record in the manifest)
    runner(artifact path, input shape, input name, threads) -> Runner (a context manager)
"""

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

from sc2deploy.errors import RegistryError, UsageError
from sc2deploy.options import option, validate
from sc2deploy.targets.gate import PRECISIONS

TARGET_MODULES = ("onnx", "tensorrt", "tflite")  # sc2deploy.targets.<name>, each with TARGETS
BUILD_PLACES = ("host", "device")
ACTIVATIONS = ("int8", "int16", "dynamic", "float")  # int16: A16W8; dynamic: ranges at run
#                                      time; float: int8 weights only (W8), fp32 activations
CALIBRATIONS = ("minmax", "entropy", "percentile")
LAST_CONV = "<last Conv>"  # keep_float entry the ONNX builders resolve to the last Conv node
FIRST_CONV = "<first Conv>"  # ... to the first Conv node (ONNX fp16 builder)
GDN = "<GDN>"  # ... to the nodes of each GDN normalization: |x| or x², its Conv, 1/ or sqrt, the
#              product or quotient with x (ONNX fp16 builder)


def _on_off(text: str) -> bool:
    if text not in ("on", "off"):
        raise ValueError("expected on or off")
    return text == "on"


@dataclass(frozen=True)
class Int8Options:
    """Static int8 quantization settings (``--per-channel``, ``--activations`` ...); a target's
    ``search`` is a tuple of these."""

    per_channel: bool = option(True, flag="--per-channel", metavar="{on,off}", parse=_on_off,
                               show=lambda on: "on" if on else "off",
                               help="int8: per-channel weight scales (default: {default})")
    reduce_range: bool = option(False, flag="--reduce-range", type=bool,
                                help="int8: 7-bit weights")
    activations: str = option(  # which ones a target accepts is declared on the target
        "int8", flag="--activations", choices=ACTIVATIONS,
        help="int8: activation type (int16 = A16W8 for onnx; dynamic for tflite; float = int8 "
             "weights only)")
    calibration: str = option("minmax", flag="--calibration", choices=CALIBRATIONS,
                              help="int8: calibration method (default: {default})")
    keep_float: Sequence[str] = option(  # TFLite: layer indices
        (), flag="--keep-float", repeat=True, metavar="NODE",
        help=f"int8, onnx-fp16: node name, op type, '{LAST_CONV}' or (fp16) '{GDN}' left in "
             "float (repeatable)")

    def __post_init__(self):
        if self.activations not in ACTIVATIONS:
            raise UsageError(f"activations {self.activations!r}: expected one of "
                             f"{', '.join(ACTIVATIONS)}")
        if self.calibration not in CALIBRATIONS:
            raise UsageError(f"calibration {self.calibration!r}: expected minmax, entropy or "
                             "percentile")
        if not isinstance(self.per_channel, bool):
            raise UsageError(f"per_channel must be true or false, got {self.per_channel!r}")
        validate(self)


@dataclass(frozen=True)
class Fp16Options:
    """fp16 conversion settings (``--keep-float``); an fp16 target's ``search`` is a tuple of
    these."""

    keep_float: Sequence[str] = ()  # node names, op types or markers (LAST_CONV ...) kept fp32


SEARCH_OPTIONS = {"int8": Int8Options, "fp16": Fp16Options}  # what a search entry is, by precision


@dataclass(frozen=True)
class HostCheck:
    """What a host check runs instead of the device's runtime, and where the real one runs."""

    precision: str  # what runs on the host (tensorrt-fp16: "fp32", the graph TensorRT parses)
    device_runtime: str  # the runtime meant to run the artifact, not run here ("TensorRT")
    device_target: str  # the target the device builds from the artifact
    device: str = "the device"  # where that runtime runs ("the Jetson")


@dataclass(frozen=True)
class Target:
    """What a target builds, where, what it accepts and what it needs."""

    name: str
    precision: str  # a precision of the gate: "fp32", "fp16" or "int8"
    runtime: str  # what runs the artifact, for display and the manifest
    runner: str  # "module:Class", see the module docstring
    builder: Optional[str] = None  # "module:function"; None when built on the device
    build_on: str = "host"  # or "device": built there by its own command (build-engine)
    host_check: Optional[HostCheck] = None  # set: the runner checks on the host (another
    #                                   runtime) an artifact meant for a device's runtime
    needs_calibration: bool = False
    activations: Tuple[str, ...] = ()  # Int8Options.activations accepted (int8 host targets)
    search: Tuple[Union[Int8Options, Fp16Options], ...] = ()  # what --search tries, cheapest
    #                                     to most float: Int8Options (int8) or Fp16Options (fp16)
    build_requires: Tuple[str, ...] = ()  # importable modules needed to build
    run_requires: Tuple[str, ...] = ()  # importable modules needed to run
    description: str = ""

    def missing(self, stage: str = "build") -> Optional[str]:
        """Why this target cannot ``stage`` ("build" or "run") here, or None when it can."""
        needed = {"build": self.build_requires, "run": self.run_requires}[stage]
        absent = [m for m in needed if importlib.util.find_spec(m) is None]
        if absent:
            return f"{self.name} needs {', '.join(absent)} (not installed)"
        return None

    @property
    def runtime_name(self) -> str:
        """The runtime's short name, without its note: "onnxruntime" for
        "onnxruntime (host check)" (the key of fidelity records and runtime packages)."""
        return self.runtime.split(" ")[0]

    @property
    def runtime_module(self) -> str:
        """The module that runs the artifact (its version keys fidelity and session records)."""
        return (self.run_requires or ("unknown",))[0]

    def executed(self) -> Dict[str, object]:
        """What runs the artifact here: runtime, precision, host check or not, in words."""
        runtime, check = self.runtime_name, self.host_check
        precision = check.precision if check else self.precision
        text = f"{runtime} {precision}" + (
            f" (host check; {check.device_runtime} not run)" if check else "")
        return {"runtime": runtime, "precision": precision, "host_check": check is not None,
                "text": text}

    def load(self, what: str):
        """The ``builder`` or ``runner`` object, imported now."""
        module, _, attribute = getattr(self, what).partition(":")
        return getattr(importlib.import_module(module), attribute)


_REGISTRY: Dict[str, Target] = {}
_LOADED = False


def _problems(target: Target) -> Tuple[str, ...]:
    """What is wrong with a record, each as 'received ..., expected ...'."""
    found = []
    if target.precision not in PRECISIONS:
        found.append(f"precision {target.precision!r}, expected one of {', '.join(PRECISIONS)}")
    if target.build_on not in BUILD_PLACES:
        found.append(f"build_on {target.build_on!r}, expected host or device")
    if (target.builder is None) != (target.build_on == "device"):
        found.append(f"builder {target.builder!r} with build_on {target.build_on!r}, expected "
                     "a builder exactly when built on the host")
    for reference in filter(None, (target.builder, target.runner)):
        if ":" not in reference:
            found.append(f"{reference!r}, expected 'module:attribute'")
    if target.host_check is not None and not isinstance(target.host_check, HostCheck):
        found.append(f"host_check {target.host_check!r}, expected a HostCheck or None")
    unknown = [a for a in target.activations if a not in ACTIVATIONS]
    if unknown:
        found.append(f"activations {unknown}, expected some of {', '.join(ACTIVATIONS)}")
    takes_int8_options = target.precision == "int8" and target.build_on == "host"
    if takes_int8_options != bool(target.activations):
        found.append(f"activations {target.activations} for a {target.precision} target built "
                     f"on the {target.build_on}, expected them exactly for int8 host targets")
    kind = SEARCH_OPTIONS.get(target.precision)
    for cfg in target.search:
        if kind is None:
            found.append(f"search entry {cfg!r} for a {target.precision} target, expected no "
                         f"search (only {' and '.join(SEARCH_OPTIONS)} targets have one)")
        elif kind is Int8Options and (not isinstance(cfg, Int8Options)
                                      or cfg.activations not in target.activations):
            found.append(f"search entry {cfg!r}, expected Int8Options with activations among "
                         f"{target.activations}")
        elif not isinstance(cfg, kind):
            found.append(f"search entry {cfg!r}, expected {kind.__name__} for a "
                         f"{target.precision} target")
    return tuple(found)


def register(target: Target) -> Target:
    """Add a checked record; a bad or duplicate one raises :class:`RegistryError`."""
    _load_all()
    _add(target, _REGISTRY)
    return target


def _add(target: Target, into: Dict[str, Target]) -> None:
    if target.name in into:
        raise RegistryError(f"target {target.name!r} is registered twice: expected a new name; "
                            f"rename one of them (registered: {', '.join(into)})")
    wrong = _problems(target)
    if wrong:
        raise RegistryError(f"target {target.name!r}: received {'; '.join(wrong)} (fix its "
                            "record in sc2deploy/targets/)")
    into[target.name] = target


def targets() -> Dict[str, Target]:
    _load_all()
    return dict(_REGISTRY)


def target_lines() -> List[str]:
    """One line per target: precision, runtime, where it is built, whether it builds here."""
    return [f"{name:<21} {t.precision:<5} {t.runtime:<25} built on {t.build_on:<6}  "
            f"{t.missing('build') or 'buildable here'}" for name, t in targets().items()]


def get_target(name: str) -> Target:
    _load_all()
    if name not in _REGISTRY:
        raise UsageError(f"unknown target {name!r}; known targets: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def _load_all() -> None:
    """Register the ``TARGETS`` of every module in ``TARGET_MODULES``, all or none."""
    global _LOADED
    if _LOADED:
        return
    found: Dict[str, Target] = {}
    for name in TARGET_MODULES:
        for target in importlib.import_module(f"sc2deploy.targets.{name}").TARGETS:
            _add(target, found)
    _REGISTRY.update(found)
    _LOADED = True
