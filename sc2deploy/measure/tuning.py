"""``sc2deploy tune``: the session settings that run a target's head fastest on this CPU (torch-free).

::

    candidates ─ threads 1, 2, 4 .. cores (and the runtime's default) ─┐
                 × graph optimization basic / extended / all (onnxruntime)
                 + its XNNPACK provider, where the wheel has one       │
    each timed on the same images, one after another, --rounds times ─ p50 ─▶ the fastest
        ─▶ artifact["sessions_by_cpu"][machine/cpu/runtime-version]  ─▶ ``profile`` here

The runtime's defaults (its own threads, optimization all) stay unless the fastest is at
least ``MIN_GAIN`` faster: a smaller difference is noise ("no speed gain"). LiteRT's
interpreter takes threads only (XNNPACK is its default delegate). Run it on the device
that runs the target: a measurement elsewhere, or under emulation, says nothing of its speed.
"""

import os
import platform
import statistics
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from sc2deploy.bundle import Bundle
from sc2deploy.machine import core_name, here_key, runtime_version
from sc2deploy.options import option, validate
from sc2deploy.measure.progress import Progress
from sc2deploy.preprocess import list_images, sample_images
from sc2deploy.targets import get_target, load_runner
from sc2deploy.targets.session import OPTIMIZATIONS, XNNPACK_PROVIDER, SessionSettings

MIN_GAIN = 0.05  # the fastest must beat the defaults' p50 by this fraction to be chosen
TUNED = "sessions_by_cpu"


@dataclass(frozen=True)
class TuneOptions:
    """What ``tune`` times and where it records the result."""

    bundle: Path = option(positional=True, metavar="BUNDLE", type=Path, help="bundle directory")
    target: str = option("onnx", flag="--target", help="artifact to tune (default: {default})")
    images: Optional[Path] = option(None, flag="--images", type=Path, metavar="DIR",
                                    help="images timed, cycled through (default: 8 bundled "
                                         "samples)")
    rounds: int = option(15, flag="--rounds", type=int, metavar="N", minimum=3,
                         help="timed runs per candidate (default: {default})")
    dry_run: bool = option(False, flag="--dry-run", type=bool,
                           help="measure and print; leave the bundle as it is")
    progress: bool = option(True, type=bool, help="progress bar on stderr")

    def __post_init__(self):
        validate(self)


def thread_counts(cores: int) -> List[int]:
    """1, 2, 4, ... below ``cores``, and ``cores`` itself."""
    counts, n = [], 1
    while n < cores:
        counts.append(n)
        n *= 2
    return counts + [max(cores, 1)]


def candidates(runtime: str, cores: int, providers: Tuple[str, ...] = ()
               ) -> List[SessionSettings]:
    """The runtime's defaults first, then every setting worth timing on ``cores`` cores."""
    threads = thread_counts(cores)
    out = [SessionSettings()]
    if runtime == "onnxruntime":
        out += [SessionSettings(t, level) for t in threads for level in OPTIMIZATIONS]
        if XNNPACK_PROVIDER in providers:
            out += [SessionSettings(t, "all", xnnpack=True) for t in threads]
    else:
        out += [SessionSettings(t) for t in threads]
    return out


def tune(options: TuneOptions) -> dict:
    """Time every candidate on this CPU; the record ``sessions_by_cpu`` keeps (not written)."""
    bundle = Bundle.open(options.bundle)
    target = get_target(options.target)
    runtime, module = target.runtime_name, target.runtime_module
    providers = _providers() if runtime == "onnxruntime" else ()
    cores = os.cpu_count() or 1
    settings = candidates(runtime, cores, providers)
    pre = bundle.preprocessing()
    images = (list_images(options.images) if options.images else sample_images())[:8]
    inputs = [pre(path) for path in images]
    times: Dict[int, List[float]] = {k: [] for k in range(len(settings))}
    progress = Progress("tune", options.rounds * len(settings), unit="run",
                        enabled=options.progress)
    with ExitStack() as stack, progress:
        runners = [stack.enter_context(load_runner(bundle, target.name, settings=s))
                   for s in settings]
        for k, runner in enumerate(runners):  # one after another: a session's thread pool
            for x in inputs[:2]:  # spins after its runs and would slow the next session's
                runner.infer(x)  # warm-up: the first runs allocate
            for r in range(options.rounds):
                x = inputs[r % len(inputs)]
                t0 = time.perf_counter_ns()
                runner.infer(x)
                times[k].append((time.perf_counter_ns() - t0) / 1e6)
                progress.update(1)
    rows = [{"settings": s.to_dict(), "describe": s.describe(),
             "p50_ms": statistics.median(times[k])} for k, s in enumerate(settings)]
    return {"key": here_key(runtime, module), "machine": platform.machine(), "cpu": core_name(),
            "cores": cores, "runtime": f"{runtime} {runtime_version(module)}",
            "rounds": options.rounds, "images": len(inputs),
            "xnnpack": _xnnpack_note(runtime, providers), **_choose(rows)}


def _choose(rows: List[dict]) -> dict:
    default, fastest = rows[0], min(rows, key=lambda r: r["p50_ms"])
    gain = 1 - fastest["p50_ms"] / default["p50_ms"]
    chosen = fastest if gain >= MIN_GAIN else default
    why = (f"{fastest['describe']}: p50 {fastest['p50_ms']:.2f} ms vs the defaults' "
           f"{default['p50_ms']:.2f} ms ({default['p50_ms'] / fastest['p50_ms']:.2f}x)"
           if chosen is fastest and fastest is not default else
           f"no speed gain: the fastest ({fastest['describe']}, {fastest['p50_ms']:.2f} ms) is "
           f"within {MIN_GAIN:.0%} of the defaults' {default['p50_ms']:.2f} ms")
    return {"candidates": rows, "chosen": chosen["settings"], "chosen_p50_ms": chosen["p50_ms"],
            "default_p50_ms": default["p50_ms"], "why": why}


def record(options: TuneOptions, result: dict) -> Path:
    """Write ``result`` into the artifact's ``sessions_by_cpu`` (one transaction)."""
    bundle = Bundle.open(options.bundle)
    with bundle.transaction() as txn:
        artifact = txn.manifest["artifacts"][options.target]
        artifact.setdefault(TUNED, {})[result["key"]] = result
        txn.commit()
    return options.bundle


def tuned_settings(bundle: Bundle, target: str, runtime: str, module: str
                   ) -> Optional[Tuple[SessionSettings, dict]]:
    """The settings ``tune`` chose on this CPU and runtime version, and its record; None when
    it never ran here."""
    artifact = bundle.manifest.get("artifacts", {}).get(target, {})
    entry = artifact.get(TUNED, {}).get(here_key(runtime, module))
    if entry is None:
        return None
    return SessionSettings.from_dict(entry["chosen"], f"{target} {TUNED}"), entry


def format_tuning(result: dict, target: str) -> str:
    lines = [f"{target} on {result['cpu']} ({result['cores']} cores, {result['runtime']}), "
             f"{result['rounds']} runs each, one candidate after another:"]
    for row in sorted(result["candidates"], key=lambda r: r["p50_ms"]):
        mark = "  <- chosen" if row["settings"] == result["chosen"] else ""
        lines.append(f"  {row['describe']:<46} p50 {row['p50_ms']:8.2f} ms{mark}")
    lines.append(f"kept: {result['why']}")
    lines.append(f"XNNPACK: {result['xnnpack']}")
    return "\n".join(lines)


def outcome_line(options: TuneOptions, result: dict) -> str:
    """Where the result went: nowhere (--dry-run), else the bundle's record."""
    if options.dry_run:
        return "--dry-run: the bundle is as it was"
    return (f"recorded in {options.bundle}: artifacts.{options.target}.sessions_by_cpu"
            f"[{result['key']}]; `sc2deploy profile` uses it on this CPU")


def _providers() -> Tuple[str, ...]:
    import onnxruntime as ort

    return tuple(ort.get_available_providers())


def _xnnpack_note(runtime: str, providers: Tuple[str, ...]) -> str:
    if runtime != "onnxruntime":
        return f"{runtime}: its default delegate, always on"
    if XNNPACK_PROVIDER in providers:
        return "timed (onnxruntime's XNNPACK provider)"
    return f"not in this onnxruntime wheel (it has {', '.join(providers)}): not timed"
