"""The tie rule of tests that compare two float paths by their rounded symbols or top-1.

A symbol may differ between two correct float implementations (torch vs onnxruntime,
AVX2 vs AVX-512 kernels) only where the reference's pre-rounding value lies within
``TIE_TOLERANCE`` = 1e-3 symbol units of k + 0.5, and then by exactly one: the gate's own
rule (``sc2deploy.targets.gate``). Why 1e-3: kernel-order drift on these heads is ~1e-5
(flips seen within 2e-5 of a tie), so 1e-3 is 50x that margin, while a real defect (a
wrong op, constant or order) moves values far more and flips symbols away from ties.
Ties must also stay rare (``MAX_TIE_FRACTION`` = 1e-4 of the values, or one on small samples).

Top-1 classes (argmax of logits) have the same rule: an image whose reference top-2 logit gap
is within ``TOP1_TIE_TOLERANCE`` = 1e-4 of its largest |logit| may rank either way. The tails'
onnxruntime-vs-torch drift is ~3e-6 of the largest |logit|, so 1e-4 is 30x that margin.
"""

import numpy as np

from sc2deploy.targets.gate import MAX_TIE_FRACTION, TIE_TOLERANCE, agreement, is_exact

__all__ = ["assert_same_symbols", "assert_same_top1", "TIE_TOLERANCE", "TOP1_TIE_TOLERANCE"]

TOP1_TIE_TOLERANCE = 1e-4  # of the reference's largest |logit|


def assert_same_symbols(expected, got, pre_round) -> dict:
    """Equal symbols image by image, bar .5 ties of ``pre_round`` (the reference's floats)."""
    stats = agreement(expected, got, pre_round)
    assert is_exact(stats), (
        f"{stats['mismatches']} of {stats['values']} symbols differ, {stats['ties']} of them "
        f"at .5 ties (within {TIE_TOLERANCE} of k + 0.5; at most {MAX_TIE_FRACTION:g} of the "
        "values may be ties)")
    return stats


def assert_same_top1(expected, got, names=None) -> int:
    """Equal top-1 image by image, bar near ties of ``expected`` (the reference's logits);
    returns how many images were checked, at least one."""
    expected, got = list(expected), list(got)
    assert len(expected) == len(got), f"{len(got)} candidate logits for {len(expected)} images"
    checked = 0
    for i, (want, have) in enumerate(zip(expected, got)):
        want, have = np.ravel(want), np.ravel(have)
        second, first = np.sort(want)[-2:]
        if first - second <= TOP1_TIE_TOLERANCE * np.abs(want).max():
            continue  # a near tie: two correct float paths may rank it either way
        name = names[i] if names is not None else f"image {i}"
        assert int(np.argmax(have)) == int(np.argmax(want)), (
            f"{name}: top-1 class {int(np.argmax(have))}, expected {int(np.argmax(want))} "
            f"(top-2 gap {first - second:.3g}, beyond the near-tie tolerance)")
        checked += 1
    assert checked > 0, (f"all {len(expected)} images are top-1 near ties (top-2 gap within "
                         f"{TOP1_TIE_TOLERANCE} of the largest |logit|): nothing was checked")
    return checked
