"""The gate in one place: agreement (the metric), passes (the rule), thresholds by precision."""

import numpy as np
import pytest

from sc2deploy.errors import FidelityError, RegistryError
from sc2deploy.targets import gate
from sc2deploy.targets.gate import MIN_AGREEMENT, agreement, passes, threshold


def _stats(agreement_pct, mismatches=0, ties=0, values=10_000):
    return {"agreement_pct": agreement_pct, "mismatches": mismatches, "ties": ties,
            "values": values}


def test_thresholds_by_precision_are_frozen():
    assert dict(MIN_AGREEMENT) == {"fp32": 100.0, "fp16": 99.9, "int8": 99.0}
    assert gate.PRECISIONS == ("fp32", "fp16", "int8")
    with pytest.raises(TypeError):
        MIN_AGREEMENT["int4"] = 90.0
    assert threshold("int8") == 99.0 and threshold("fp32", 97.5) == 97.5
    with pytest.raises(RegistryError, match="precision 'int4' has no gate: expected one of "
                                            "fp32, fp16, int8"):
        threshold("int4")


def test_fp32_must_be_exact_bar_rare_ties_unless_a_threshold_is_given():
    assert passes("fp32", _stats(99.99, mismatches=1, ties=1))
    assert not passes("fp32", _stats(99.99, mismatches=1, ties=0))
    assert not passes("fp32", _stats(99.9, mismatches=10, ties=10))  # ties must stay rare
    assert passes("fp32", _stats(99.0, mismatches=100), min_agreement=99.0)
    assert passes("int8", _stats(99.0)) and not passes("int8", _stats(98.99))
    assert passes("fp16", _stats(99.9)) and not passes("fp16", _stats(99.8))
    assert not passes("fp16", _stats(99.9), min_agreement=100.0)


def test_agreement_counts_mismatches_and_ties():
    ref = [np.array([[0.0, 1.0, 2.0, 3.0]])]
    pre = [np.array([[0.1, 1.5, 2.0, 3.2]])]  # 1.5 is a .5 tie
    stats = agreement(ref, [np.array([[0, 2, 2, 5]])], pre)
    assert stats["mismatches"] == 2 and stats["ties"] == 1
    assert stats["agreement_pct"] == 50.0 and stats["within_one_pct"] == 75.0


def test_agreement_refuses_another_shape_with_what_to_do():
    with pytest.raises(FidelityError, match=r"image 0: received candidate symbols of shape "
                                            r"\(1, 3\), expected the reference's shape \(1, 4\): "
                                            r".*rebuild it from this bundle"):
        agreement([np.zeros((1, 4))], [np.zeros((1, 3))])


def test_wilson_interval_is_sound_at_the_edges():
    from sc2deploy.targets.gate import wilson_interval

    lo, hi = wilson_interval(16, 16)
    assert hi == 1.0 and 0.80 < lo < 0.81  # 16 of 16 proves only >= 80.6 %
    lo, hi = wilson_interval(1000, 1000)
    assert lo > 0.996
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and 0.27 < hi < 0.28


def test_task_agreement_counts_top1_top5_and_kl():
    import numpy as np

    from sc2deploy.targets.gate import task_agreement

    ref = [np.array([[5.0, 1.0, 0.0, -1.0, -2.0, -3.0]]), np.array([[0.0, 3.0, 1.0, 0, 0, 0]])]
    same = task_agreement(ref, ref)
    assert same["top1_agree"] == 2 and same["kl_mean"] == pytest.approx(0.0, abs=1e-12)
    flipped = [ref[0], np.array([[3.0, 0.0, 1.0, 0, 0, 0]])]
    got = task_agreement(ref, flipped)
    assert got["top1_agree"] == 1 and got["top1_agreement_pct"] == 50.0
    assert got["kl_max"] > 1.0 and got["kl_mean"] == pytest.approx(got["kl_max"] / 2)
