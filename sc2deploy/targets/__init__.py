"""Per-target runners (torch-free). Only ``onnx`` (fp32) exists so far."""

from sc2deploy.bundle import Bundle
from sc2deploy.errors import UsageError
from sc2deploy.targets.runner import Runner

TARGETS = ("onnx",)


def load_runner(bundle: Bundle, target: str = "onnx", threads=None) -> Runner:
    """A context-managed runner of ``target``'s artifact in ``bundle``."""
    if target not in TARGETS:
        raise UsageError(f"unknown target {target!r}; known targets: {', '.join(TARGETS)}")
    if target not in bundle.manifest.get("artifacts", {}):
        raise UsageError(f"bundle {bundle.path} has no {target!r} artifact; build it first")
    from sc2deploy.targets.onnx import OnnxRunner

    return OnnxRunner(bundle, target, threads)


__all__ = ["TARGETS", "Runner", "load_runner"]
