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

An objective is used only when every result has it (the table says which were used). With
accuracy, bytes are the evaluation's (measured on the same images as the accuracy), not
the profile's.
Results whose head did not run on the target's own runtime (host checks) are left out.
"""

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from sc2deploy.report.data import (energy_ci95, energy_kind_of, host_check_of, names,
                                   radio_joules, ran_text, same_config, spread)

Interval = Tuple[float, float, float]
OBJECTIVES = ("bytes", "latency", "energy", "accuracy")
BYTES_TIE = 0.01


@dataclass(frozen=True)
class Front:
    """The objectives used, who is on the front, and who ties with whom (indices)."""

    objectives: Tuple[str, ...]
    on_front: Tuple[bool, ...]
    ties: Tuple[Tuple[int, ...], ...]  # per result: the others tied in every objective
    rows: Tuple[Optional[dict], ...] = ()  # with accuracy: each result's evaluation row

    @property
    def paired(self) -> bool:
        """Bytes and accuracy both from the evaluations (the same images)."""
        return "accuracy" in self.objectives


def candidates(docs: Sequence[dict]) -> List[Tuple[dict, str]]:
    """(result, name) of the device results the front is taken over: those whose head ran on
    its target's own runtime."""
    return [(d, n) for d, n in zip(docs, names(docs))
            if d["kind"] == "device" and not host_check_of(d)]


def left_out(docs: Sequence[dict]) -> Optional[str]:
    """One line naming the device results left out of the front, and why (None: none)."""
    out = [f"{n} ran {ran_text(d)}" for d, n in zip(docs, names(docs))
           if d["kind"] == "device" and host_check_of(d)]
    return (f"Not in the Pareto front: {'; '.join(out)}: not the target's own runtime, so "
            "these numbers are not that runtime's (build and profile it on its device)."
            if out else None)


def evaluation_row(doc: dict, evaluations: Sequence[dict]) -> Optional[dict]:
    """The evaluation row of ``doc``'s bundle and target, if any (reports refuse two)."""
    for evaluation in evaluations:
        for row in evaluation["targets"]:
            if same_config(evaluation | {"target": row["target"]}, doc):
                return row
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


def objectives(doc: dict, row: Optional[dict]) -> Dict[str, Optional[Interval]]:
    """The intervals of ``doc``; with its evaluation ``row``, bytes and top-1 from the row."""
    mean = (row or doc)["bytes"]["mean"]
    top1 = row["top1"] if row else None
    return {"bytes": (mean * (1 - BYTES_TIE / 2), mean, mean * (1 + BYTES_TIE / 2)),
            "latency": spread(doc),
            "energy": _energy(doc),
            "accuracy": None if top1 is None else (-top1["ci95"][1], -top1["pct"],
                                                   -top1["ci95"][0])}


def front(docs: Sequence[dict], evaluations: Sequence[dict] = ()) -> Front:
    """The noise-aware Pareto front of device results (see the module docstring)."""
    rows = [evaluation_row(d, evaluations) for d in docs]
    paired = bool(rows) and all(rows)
    values = [objectives(d, r if paired else None) for d, r in zip(docs, rows)]
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
    return Front(used, on, ties, tuple(rows) if paired else ())

