"""The fidelity gate: metric, rule and thresholds in one place (torch-free).

    reference symbols ─┐
    candidate symbols ─┴─ agreement() ─ stats ─ passes(precision, stats, min_agreement)
    reference pre-round values ─ ties ┘            fp32: is_exact(stats), else
                                                   agreement_pct >= threshold(precision, ...)

A symbol is the rounding of a float. When the reference float lies within
``TIE_TOLERANCE`` of a .5 boundary, two correct float implementations may
round it differently; such *ties* are counted apart from real mismatches.
"""

from types import MappingProxyType
from typing import Dict, Mapping, Optional, Sequence

import numpy as np

from sc2deploy.errors import FidelityError, RegistryError

# % of symbols equal to the torch fp32 head that each precision must reach (by default).
MIN_AGREEMENT: Mapping[str, float] = MappingProxyType({"fp32": 100.0, "fp16": 99.9,
                                                        "int8": 99.0})
PRECISIONS = tuple(MIN_AGREEMENT)
TIE_TOLERANCE = 1e-3  # in symbol units
MAX_TIE_FRACTION = 1e-4  # ties allowed in an exact (fp32) comparison


def agreement(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray],
              pre_round: Optional[Sequence[np.ndarray]] = None) -> Dict[str, float]:
    """Compare integer-valued arrays image by image; ``pre_round`` marks ties."""
    total = mismatched = ties = off_by_one = 0
    abs_diff = 0.0
    for i, (ref, cand) in enumerate(zip(reference, candidate)):
        ref = np.asarray(ref, dtype=np.float64)
        cand = np.asarray(cand, dtype=np.float64)
        if ref.shape != cand.shape:
            raise FidelityError(
                f"image {i}: received candidate symbols of shape {cand.shape}, expected the "
                f"reference's shape {ref.shape}: the artifact does not compute this bundle's "
                "head; rebuild it from this bundle (sc2deploy build BUNDLE --target T)")
        diff = np.abs(ref - cand)
        wrong = diff != 0
        total += ref.size
        mismatched += int(wrong.sum())
        off_by_one += int((diff <= 1).sum()) - int((~wrong).sum())
        abs_diff += float(diff.sum())
        if pre_round is not None:
            frac = np.abs(np.asarray(pre_round[i], dtype=np.float64))
            frac -= np.floor(frac)
            near = np.abs(frac - 0.5) <= TIE_TOLERANCE
            ties += int((wrong & near & (diff == 1)).sum())
    total = max(total, 1)
    return {"values": total, "mismatches": mismatched, "ties": ties,
            "agreement_pct": 100.0 * (total - mismatched) / total,
            "within_one_pct": 100.0 * (total - mismatched + off_by_one) / total,
            "mean_abs_diff": abs_diff / total}


def is_exact(stats: Dict[str, float]) -> bool:
    """True when every mismatch is a .5 tie and ties stay rare: at most ``MAX_TIE_FRACTION``
    of the values, or one tie on small samples (where that fraction is below one)."""
    return (stats["mismatches"] == stats["ties"]
            and stats["ties"] <= max(1.0, MAX_TIE_FRACTION * stats["values"]))


def threshold(precision: str, min_agreement: Optional[float] = None) -> float:
    """Required % of symbols equal to torch: ``min_agreement`` if given, else the precision's."""
    if min_agreement is not None:
        return min_agreement
    if precision not in MIN_AGREEMENT:
        raise RegistryError(f"precision {precision!r} has no gate: expected one of "
                            f"{', '.join(PRECISIONS)} (add its threshold to MIN_AGREEMENT in "
                            "sc2deploy/targets/gate.py)")
    return MIN_AGREEMENT[precision]


def passes(precision: str, stats: Dict[str, float],
           min_agreement: Optional[float] = None) -> bool:
    """The gate: fp32 must be exact bar rare .5 ties (unless ``min_agreement`` is given);
    every other precision needs ``threshold(precision, min_agreement)`` % equal symbols."""
    if precision == "fp32" and min_agreement is None:
        return is_exact(stats)
    return stats["agreement_pct"] >= threshold(precision, min_agreement)


# The task-level gate (bundles with a tail): what reaches the server's classifier.
MIN_TOP1_PCT = 100.0  # % of evaluation images whose top-1 class equals the fp32 pipeline's
MAX_KL = 0.01  # nats: mean KL(softmax fp32 pipeline || softmax candidate) over the images
GATES = ("auto", "symbols", "task")


def task_agreement(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray]) -> Dict:
    """Compare the tail's logits for the candidate's symbols with the fp32 pipeline's."""
    n = len(reference)
    top1 = top5 = 0
    kl = []
    for ref, cand in zip(reference, candidate):
        ref = np.asarray(ref, np.float64).reshape(-1)
        cand = np.asarray(cand, np.float64).reshape(-1)
        top1 += int(np.argmax(ref) == np.argmax(cand))
        k = min(5, ref.size)
        top5 += len(set(np.argsort(-ref)[:k]) & set(np.argsort(-cand)[:k]))
        p, q = _log_softmax(ref), _log_softmax(cand)
        kl.append(float(np.sum(np.exp(p) * (p - q))))
    lo, hi = wilson_interval(top1, n)
    return {"images": n, "top1_agree": top1, "top1_agreement_pct": 100.0 * top1 / max(n, 1),
            "top1_ci95_pct": [100.0 * lo, 100.0 * hi],
            "top5_overlap_pct": 100.0 * top5 / max(5 * n, 1),
            "kl_mean": float(np.mean(kl)) if kl else 0.0,
            "kl_max": float(np.max(kl)) if kl else 0.0}


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max()
    return x - np.log(np.sum(np.exp(x)))


def wilson_interval(k: int, n: int, z: float = 1.96):
    """95 % Wilson score interval of a proportion k/n (sound at 0 and n, unlike the normal one)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def decide(precision: str, stats: Dict, task: Optional[Dict], gate: str = "auto",
           min_agreement: Optional[float] = None, min_top1: Optional[float] = None,
           max_kl: Optional[float] = None) -> Dict:
    """The verdict and the rule that decided it.

    fp32 artifacts are always judged on symbols (exact bar .5 ties): they must reproduce
    the export, and any other flip is a defect, not a precision loss. fp16/int8 artifacts
    of a bundle with a tail are judged on what reaches the server (``task``): top-1 equal to
    the fp32 pipeline on at least ``min_top1`` % of the images AND a mean KL divergence of
    the predictions of at most ``max_kl`` nats; otherwise on symbols as above.
    """
    if gate not in GATES:
        raise FidelityError(f"--gate {gate!r}: expected one of {', '.join(GATES)}")
    if gate == "task" and task is None:
        raise FidelityError("--gate task needs a bundle with a tail (tail.onnx); this one has "
                            "none: use --gate symbols, or export a checkpoint with its tail")
    use_task = task is not None and precision != "fp32" and gate != "symbols"
    if not use_task:
        ok = passes(precision, stats, min_agreement)
        rule = ("symbols: exact bar .5 ties" if precision == "fp32" and min_agreement is None
                else f"symbols: >= {threshold(precision, min_agreement)} % equal")
        return {"rule": rule, "passed": ok, "min_agreement_pct": threshold(precision,
                                                                           min_agreement)}
    top1 = MIN_TOP1_PCT if min_top1 is None else min_top1
    kl = MAX_KL if max_kl is None else max_kl
    ok = task["top1_agreement_pct"] >= top1 and task["kl_mean"] <= kl
    lo, _ = task["top1_ci95_pct"]
    return {"rule": f"task: top-1 equal on >= {top1:g} % of {task['images']} images (95 % CI of "
                    f"the agreement >= {lo:.1f} %) and mean KL <= {kl:g} nats",
            "passed": ok, "min_top1_pct": top1, "max_kl": kl}
