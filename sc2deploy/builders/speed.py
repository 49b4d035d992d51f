"""Is a reduced-precision artifact worth it? Its speed against the fp32 head, and the search's
candidates with the speed that decided between them.

The kept artifact and the bundle's fp32 ONNX head on onnxruntime (what a user deploys
without a build) are timed in turns on this CPU, one thread, on the same input; a ratio
below ``SPEED_GAIN`` is reported as "no speed gain" in the build table, the manifest
(``artifacts.T.speed``) and ``sc2deploy info``.
"""

import contextlib
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from sc2deploy.bundle import Bundle
from sc2deploy.machine import here_key
from sc2deploy.targets.registry import Target, get_target

SPEED_GAIN = 1.05  # fp32 p50 / artifact p50 below this: no speed gain worth the name
TURNS = 30  # timed inferences of each, in turns, after one untimed


def time_in_turns(bundle: Bundle, runs: Sequence[Tuple[Target, Path]], x: np.ndarray,
                  turns: int = TURNS) -> List[float]:
    """p50 ms of each (target, artifact) on input ``x``, one thread, timed in turns (one
    inference of each in every turn, after one untimed): a slower spell of the machine
    falls on all of them alike."""
    inp = bundle.model["input"]
    with contextlib.ExitStack() as stack:
        runners = [stack.enter_context(target.load("runner")(path, inp["shape"], inp["name"], 1))
                   for target, path in runs]
        for runner in runners:
            runner.infer(x)
        times: List[List[float]] = [[] for _ in runners]
        for _ in range(turns):
            for runner, spent in zip(runners, times):
                start = time.perf_counter()
                runner.infer(x)
                spent.append(time.perf_counter() - start)
    return [1e3 * float(np.median(t)) for t in times]


def speed_vs_fp32(bundle: Bundle, target: Target, path: Path, x: np.ndarray,
                  turns: int = TURNS) -> Optional[Dict]:
    """The artifact's p50 against the fp32 head's on this CPU; None where the host does not
    run the target's own runtime (a host check stands in: its speed says nothing)."""
    if target.host_check is not None or target.precision == "fp32":
        return None
    fp32_file = bundle.file(bundle.manifest["artifacts"]["onnx"]["file"])
    p50, fp32_p50 = time_in_turns(bundle, [(target, path), (get_target("onnx"), fp32_file)], x,
                                  turns)
    ratio = fp32_p50 / p50
    speed = {"p50_ms": round(p50, 3), "fp32_p50_ms": round(fp32_p50, 3),
             "speedup": round(ratio, 3), "gain": ratio >= SPEED_GAIN,
             "against": "the bundle's fp32 ONNX head on onnxruntime", "threads": 1,
             "turns": turns, "cpu": here_key(target.runtime_name, target.runtime_module)}
    return {**speed, "summary": f"{speed_text(speed)} on {speed['cpu']}"}


def speed_text(speed: Optional[Dict]) -> str:
    """``1.52x fp32 (8.1 vs 12.3 ms)`` or ``no speed gain: 0.90x fp32 ...``; "" unmeasured."""
    if not speed:
        return ""
    text = (f"{speed['speedup']:.2f}x fp32's speed ({speed['p50_ms']:.1f} vs "
            f"{speed['fp32_p50_ms']:.1f} ms, in turns)")
    return text if speed["gain"] else f"no speed gain: {text}"


def search_lines(target: str, tried: List[Dict], kept: Optional[Dict],
                 passed: bool = True) -> List[str]:
    """Every configuration a search tried: its p50 on this CPU and its verdict, and why the
    kept one won (the fastest that passed); ``passed`` False: none passed, ``kept`` is the
    most faithful, which the build discards unless told to keep it."""
    lines = [f"{target} search: {len(tried)} configurations, the fastest that passes the gate "
             "is kept (* timed in turns with the others that pass)"]
    most = max(((e.get("task") or {}).get("images", 0) for e in tried), default=0)
    for entry in tried:
        options = entry["options"]
        label = describe_options(options)
        if entry.get("refused"):
            lines.append(f"  {label:<58} refused: {entry['refused']}")
            continue
        task = entry.get("task") or {}
        evidence = (f"top-1 {task['top1_agree']}/{task['images']}" if task
                    else f"{entry.get('agreement_pct', 0):.3f} % equal")
        decision = entry.get("decision") or ("passed" if entry.get("passed") else "failed")
        if decision == "undecided":  # the interval straddles the bar: not shown to pass
            # on fewer images than the others (screened only) beside one that passes: skipped
            skipped = passed and task.get("images", 0) < most
            decision = "skipped" if skipped else "failed"
        verdict = {"passed": "passes", "failed": "fails",
                   "skipped": "not confirmed: slower than one that passes"}[decision]
        mark = ("" if kept is None or options != kept
                else "  <- kept" if passed else "  <- the most faithful (none passed)")
        p50 = entry.get("latency_p50_ms")
        p50 = "n/a" if p50 is None else f"{p50:.1f}" + ("*" if entry.get("timed_in_turns")
                                                       else "")
        lines.append(f"  {label:<58} p50 {p50:>6} ms  {evidence:<16} {verdict}{mark}")
    return lines


def describe_options(options: Dict) -> str:
    """One configuration of a search in a few words (as recorded in the manifest)."""
    if "activations" not in options:  # fp16: which nodes stay fp32
        kept = options.get("keep_float") or []
        return "every node fp16" if not kept else f"fp32: {', '.join(kept)}"
    parts = ["W8 only" if options["activations"] == "float" else f"act {options['activations']}"]
    if options["activations"] != "float":
        parts += ["per-channel" if options.get("per_channel", True) else "per-tensor",
                  options.get("calibration", "minmax")]
    if options.get("reduce_range"):
        parts.append("reduce-range")
    if options.get("keep_float"):
        parts.append("float: " + ",".join(n.rsplit("/", 2)[-2] if n.count("/") > 1 else n
                                           for n in options["keep_float"]))
    return ", ".join(parts)
