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
