"""What ``verify`` on another CPU (over ssh, or emulated) shares: which of a bundle's artifacts
are sent there, and the entry each measurement adds to ``fidelity_by_cpu`` in the manifest
(written by ``builders.build.record_fidelity``, one transaction per run)."""

from typing import Callable, Dict, List, Optional, Tuple

from sc2deploy.bundle import Bundle


def split_artifacts(bundle: Bundle, why_not: Callable[[object], Optional[str]]
                    ) -> Tuple[List[str], Dict[str, str]]:
    """(the bundle's artifacts to run, {artifact: why not} for the others): unknown targets and
    Jetson host checks are never run; ``why_not(target)`` names other exclusions (or None)."""
    from sc2deploy.targets.registry import targets

    known = targets()
    runnable, skipped = [], {}
    for name in bundle.manifest.get("artifacts", {}):
        target = known.get(name)
        reason = "unknown target" if target is None else \
            "host check of a Jetson artifact: only the Jetson runs its engine" if target.host_check \
            else why_not(target)
        if reason:
            skipped[name] = reason
        else:
            runnable.append(name)
    return runnable, skipped


def fidelity_entry(machine: str, cpu: str, emulated: bool, runtime: str, stats: Dict,
                   verdict: Dict) -> Dict:
    """One ``fidelity_by_cpu`` entry: where it was measured, by what, the stats and verdict."""
    return {"machine": machine, "cpu": cpu, "emulated": emulated, "runtime": runtime,
            "images": stats["images"], "stats": stats, "verdict": verdict}
