"""Room ``targets``: target records, their runners and the fidelity gate (torch-free).

Each module of ``registry.TARGET_MODULES`` declares its :class:`Target` records
(capabilities as data); ``gate`` holds the fidelity metric, rule and thresholds;
``load_runner`` gives a context-managed runner whose ``infer()`` validates its input;
``device_job`` is what ``verify --host`` and ``--emulate`` run on the other CPU
(``python -m sc2deploy.targets.device_job``).
"""

from dataclasses import replace
from typing import List, Optional

from sc2deploy.bundle import Bundle
from sc2deploy.errors import UsageError
from sc2deploy.targets.registry import Target, get_target, targets
from sc2deploy.targets.runner import Runner
from sc2deploy.targets.session import SessionSettings


def load_runner(bundle: Bundle, target: str = "onnx", threads: Optional[int] = None,
                settings: Optional[SessionSettings] = None) -> Runner:
    """A runner of ``target``'s artifact in ``bundle`` (use it in a ``with`` block), run with
    ``settings`` (``threads``, when given, overrides theirs)."""
    spec = get_target(target)
    if target not in bundle.manifest.get("artifacts", {}):
        raise UsageError(f"bundle {bundle.path} has no {target!r} artifact; build it first: "
                         f"sc2deploy build {bundle.path} --target {target}")
    missing = spec.missing("run")
    if missing:
        raise UsageError(f"cannot run {target} here: {missing}")
    entry = bundle.manifest["artifacts"][target]
    model_input = bundle.model["input"]
    if settings is not None and threads is None:
        threads = settings.threads
    runner = spec.load("runner")(bundle.file(entry["file"]), model_input["shape"],
                                 model_input["name"], threads)
    if settings is not None:
        runner.settings = replace(settings, threads=threads)
    return runner


SERVER_PARTS = ("decoder", "tail")  # server-side models a bundle may carry
NAMED_TAIL = "tail:"  # part "tail:NAME": manifest["tails"][NAME] (sc2deploy add-tail)


def server_parts(bundle: Bundle) -> List[str]:
    """The server-side parts ``bundle`` carries: decoder, tail, then tail:NAME by name."""
    present = [p for p in SERVER_PARTS if "file" in bundle.manifest.get(p, {})]
    return present + [NAMED_TAIL + name for name in sorted(bundle.manifest.get("tails", {}))]


def tail_parts(bundle: Bundle) -> List[str]:
    """The server parts that are tails: the main one, then tail:NAME by name."""
    return [p for p in server_parts(bundle) if p == "tail" or p.startswith(NAMED_TAIL)]


def server_entry(bundle: Bundle, part: str) -> dict:
    """The manifest entry of the server-side ``part`` ({} when the bundle has none)."""
    if part.startswith(NAMED_TAIL):
        return bundle.manifest.get("tails", {}).get(part[len(NAMED_TAIL):], {})
    return bundle.manifest.get(part, {}) if part in SERVER_PARTS else {}


def load_server_runner(bundle: Bundle, part: str, threads: Optional[int] = None) -> Runner:
    """A runner of the bundle's server-side ``part`` (decoder.onnx, tail.onnx or, for
    ``tail:NAME``, tail-NAME.onnx)."""
    from sc2deploy.targets.onnx import ServerRunner

    entry = server_entry(bundle, part)
    if "file" not in entry:
        raise UsageError(f"bundle {bundle.path} has no {part!r} model; it has: "
                         f"{', '.join(server_parts(bundle)) or 'none'}")
    return ServerRunner(bundle.file(entry["file"]), entry["input"]["shape"],
                        entry["input"]["name"], threads)


__all__ = ["NAMED_TAIL", "Runner", "SERVER_PARTS", "Target", "get_target", "load_runner",
           "load_server_runner", "server_entry", "server_parts", "tail_parts",
           "targets"]
