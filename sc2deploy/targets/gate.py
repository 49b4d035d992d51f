"""Symbol agreement between a candidate runtime and the torch reference (torch-free).

A symbol is the rounding of a float. When the reference float lies within
``TIE_TOLERANCE`` of a .5 boundary, two correct float implementations may
round it differently; such *ties* are counted apart from real mismatches.
"""

from typing import Dict, Optional, Sequence

import numpy as np

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
            raise ValueError(f"image {i}: candidate shape {cand.shape} != reference {ref.shape}")
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
