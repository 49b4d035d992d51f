"""How a replica runs a server-side model on a batch: in one run, or one image at a time.

A free batch dimension lets onnxruntime run the whole batch at once, which is not always
faster on a CPU (larger activations, the same arithmetic per image). ``auto`` times both on
the bundle's reference latents, on the CPU the replica runs on, and keeps the faster.
"""

import time
from typing import Dict

import numpy as np

from sc2deploy.bundle import Bundle
from sc2deploy.errors import UsageError
from sc2deploy.targets import server_entry, tail_parts
from sc2deploy.targets.onnx import ServerRunner

MODES = ("auto", "batched", "single")
ROUNDS = 3  # timed alternately; the fastest round of each counts
BUDGET_S = 2.0  # at most this long per model, then the rounds so far decide


def choose(runner: ServerRunner, latents: np.ndarray, max_batch: int, mode: str
           ) -> Dict[str, str]:
    """``{"mode": "batched" | "single", "why": ...}`` for the model ``runner`` runs; ``mode``
    is one of MODES (checked by ServeOptions)."""
    if not runner.batch_free:
        if mode == "batched":
            raise _batch_of_one([runner.path.name])
        return {"mode": "single", "why": f"{runner.path.name}: batch dimension of 1"}
    if mode != "auto":
        return {"mode": mode, "why": f"--tail-batch {mode}"}
    if max_batch == 1:
        return {"mode": "single", "why": "--max-batch 1"}
    x = np.stack([latents[i % len(latents)] for i in range(max_batch)]).astype(np.float32)
    ms = _time_both(runner, x)
    faster = "batched" if ms["batched"] < ms["single"] else "single"
    return {"mode": faster,
            "why": f"{max_batch} reference latents on this CPU: {ms['single']:.1f} ms one at a "
                   f"time, {ms['batched']:.1f} ms as one batch"}


def refuse_unbatchable(bundle: Bundle, mode: str) -> None:
    """Before anything starts: ``batched`` needs every tail's batch dimension free."""
    entries = [server_entry(bundle, part) for part in tail_parts(bundle)]
    fixed = [e["file"] for e in entries if e.get("batch") != "free"]
    if mode == "batched" and fixed:
        raise _batch_of_one(fixed, f" of {bundle.path}")


def _batch_of_one(files, where: str = "") -> UsageError:
    return UsageError(f"--tail-batch batched: {', '.join(files)}{where} "
                      f"{'has' if len(files) == 1 else 'have'} a batch dimension of 1 (exported "
                      "before sc2deploy batched tails, or a decoder); export the bundle again, "
                      "or use --tail-batch auto")


def run(runner: ServerRunner, x: np.ndarray, mode: str) -> np.ndarray:
    """The model's outputs for the batch ``x`` [N, ...], run as ``mode`` chose."""
    return runner.infer_batch(x) if mode == "batched" else \
        np.concatenate([runner.infer(x[i:i + 1]) for i in range(len(x))])


def _time_both(runner: ServerRunner, x: np.ndarray) -> Dict[str, float]:
    best = {"single": float("inf"), "batched": float("inf")}
    deadline = time.perf_counter() + BUDGET_S
    for mode in best:  # warm-up: onnxruntime allocates for each shape
        run(runner, x, mode)
    for _ in range(ROUNDS):
        for mode in best:
            t0 = time.perf_counter_ns()
            run(runner, x, mode)
            best[mode] = min(best[mode], (time.perf_counter_ns() - t0) / 1e6)
        if time.perf_counter() > deadline:
            break
    return best
