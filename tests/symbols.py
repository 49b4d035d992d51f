"""The tie rule of tests that compare two float paths by their rounded symbols.

A symbol may differ between two correct float implementations (torch vs onnxruntime,
AVX2 vs AVX-512 kernels) only where the reference's pre-rounding value lies within
``TIE_TOLERANCE`` = 1e-3 symbol units of k + 0.5, and then by exactly one: the gate's own
rule (``sc2deploy.targets.gate``). Why 1e-3: kernel-order drift on these heads is ~1e-5
(flips seen within 2e-5 of a tie), so 1e-3 is 50x that margin, while a real defect (a
wrong op, constant or order) moves values far more and flips symbols away from ties.
Ties must also stay rare (``MAX_TIE_FRACTION`` = 1e-4 of the values, or one on small samples).
"""

from sc2deploy.targets.gate import MAX_TIE_FRACTION, TIE_TOLERANCE, agreement, is_exact

__all__ = ["assert_same_symbols", "TIE_TOLERANCE"]


def assert_same_symbols(expected, got, pre_round) -> dict:
    """Equal symbols image by image, bar .5 ties of ``pre_round`` (the reference's floats)."""
    stats = agreement(expected, got, pre_round)
    assert is_exact(stats), (
        f"{stats['mismatches']} of {stats['values']} symbols differ, {stats['ties']} of them "
        f"at .5 ties (within {TIE_TOLERANCE} of k + 0.5; at most {MAX_TIE_FRACTION:g} of the "
        "values may be ties)")
    return stats
