"""Room ``targets``: target records, their runners and the fidelity gate (torch-free).

Each target module registers :class:`Target` records; ``load_runner`` gives a
context-managed runner whose ``infer()`` validates its input. May import: core, ``codec``.
"""

from typing import Optional

from sc2deploy.bundle import Bundle
from sc2deploy.errors import UsageError
from sc2deploy.targets.registry import Target, get_target, targets
from sc2deploy.targets.runner import Runner


def load_runner(bundle: Bundle, target: str = "onnx", threads: Optional[int] = None) -> Runner:
    """A runner of ``target``'s artifact in ``bundle`` (use it in a ``with`` block)."""
    spec = get_target(target)
    if target not in bundle.manifest.get("artifacts", {}):
        raise UsageError(f"bundle {bundle.path} has no {target!r} artifact; build it first: "
                         f"sc2deploy build {bundle.path} --target {target}")
    missing = spec.missing("run")
    if missing:
        raise UsageError(f"cannot run {target} here: {missing}")
    entry = bundle.manifest["artifacts"][target]
    model_input = bundle.model["input"]
    return spec.load("runner")(bundle.file(entry["file"]), model_input["shape"],
                               model_input["name"], threads)


__all__ = ["Runner", "Target", "get_target", "load_runner", "targets"]
