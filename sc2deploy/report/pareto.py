"""The Pareto front over bytes, latency, energy and accuracy, with ties inside the noise.

Each objective of a result is an interval (low, value, high), smaller is better (accuracy
is negated). One result is *clearly better* than another in an objective when its interval
lies wholly below the other's; it *dominates* when it is clearly better in at least one
objective and clearly worse in none. The front is every result no other dominates, so
results whose differences are inside the noise are kept together, as ties:

- bytes: mean ± 0.5 % (differences within 1 % are ties);
- latency: device total, the interquartile range of the samples, else p50 ± 0.53 (p90 − p50);
- energy per image (compute + radio): measured, its 95 % CI; modeled, the time's
  interquartile range scaled to the energy (a model's only spread is the time's); the
  radio's modeled energy is added to both ends;
- accuracy: top-1 with its 95 % Wilson interval, from an evaluation document of the same
  bundle and target.

An objective is used only when every result has it (the table says which were used).
"""

from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

from sc2deploy.report.data import (energy_ci95, energy_kind_of, radio_joules, same_config,
                                   spread)

Interval = Tuple[float, float, float]
OBJECTIVES = ("bytes", "latency", "energy", "accuracy")
BYTES_TIE = 0.01


@dataclass(frozen=True)
class Front:
    """The objectives used, who is on the front, and who ties with whom (indices)."""

    objectives: Tuple[str, ...]
    on_front: Tuple[bool, ...]
    ties: Tuple[Tuple[int, ...], ...]  # per result: the others tied in every objective


def accuracy_of(doc: dict, evaluations: Sequence[dict]) -> Optional[dict]:
    """The top-1 entry of ``doc``'s bundle and target in the evaluation documents, if any."""
    for evaluation in evaluations:
        for row in evaluation["targets"]:
            if same_config(evaluation | {"target": row["target"]}, doc):
                return row["top1"]
    return None


def _energy(doc: dict) -> Optional[Interval]:
    kind = energy_kind_of(doc)
    if kind == "none":
        return None
    compute = doc["energy"]["joules_per_image"]["total"]
    radio = radio_joules(doc) or 0.0
    ci = energy_ci95(doc)
    if ci is not None:
        lo, hi = ci
    elif kind == "modeled":
        q1, p50, q3 = spread(doc)
        lo, hi = (compute * q1 / p50, compute * q3 / p50) if p50 > 0 else (compute, compute)
    else:
        lo = hi = compute
    return lo + radio, compute + radio, hi + radio


def objectives(doc: dict, evaluations: Sequence[dict]) -> Dict[str, Optional[Interval]]:
    mean = doc["bytes"]["mean"]
    top1 = accuracy_of(doc, evaluations)
    return {"bytes": (mean * (1 - BYTES_TIE / 2), mean, mean * (1 + BYTES_TIE / 2)),
            "latency": spread(doc),
            "energy": _energy(doc),
            "accuracy": None if top1 is None else (-top1["ci95"][1], -top1["pct"],
                                                   -top1["ci95"][0])}


def front(docs: Sequence[dict], evaluations: Sequence[dict] = ()) -> Front:
    """The noise-aware Pareto front of device results (see the module docstring)."""
    values = [objectives(d, evaluations) for d in docs]
    used = tuple(k for k in OBJECTIVES if values and all(v[k] is not None for v in values))

    def better(a: int, b: int, key: str) -> bool:
        return values[a][key][2] < values[b][key][0]

    def dominates(a: int, b: int) -> bool:
        return (any(better(a, b, k) for k in used)
                and not any(better(b, a, k) for k in used))

    n = len(docs)
    on = tuple(not any(dominates(j, i) for j in range(n) if j != i) for i in range(n))
    ties = tuple(tuple(j for j in range(n) if j != i and not any(
        better(i, j, k) or better(j, i, k) for k in used)) for i in range(n))
    return Front(used, on, ties)

