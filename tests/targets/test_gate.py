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


def test_wilson_lower_bound_of_all_agreeing_is_n_over_n_plus_z_squared():
    from sc2deploy.targets.gate import wilson_interval

    z2 = 1.96 ** 2  # k = n: the lower bound is n / (n + z^2) exactly
    for n, known in ((16, 0.8064), (73, 0.9500), (200, 0.9812), (1000, 0.9962)):
        lo, hi = wilson_interval(n, n)
        assert hi == pytest.approx(1.0) and lo == pytest.approx(n / (n + z2), abs=1e-12)
        assert round(lo, 4) == known
    lo, hi = wilson_interval(193, 200)  # the demo's A16W8 on its eval set (issue 21)
    assert (round(lo, 4), round(hi, 4)) == (0.9295, 0.9829)
    with pytest.raises(FidelityError, match="received 17 successes of 16 trials"):
        wilson_interval(17, 16)


def test_task_evidence_decides_on_the_lower_bound_and_states_its_resolution():
    from sc2deploy.targets.gate import images_to_show, task_evidence

    assert images_to_show(95.0) == 73 and images_to_show(97.0) == 125
    assert images_to_show(100.0) is None  # no finite sample shows 100 %
    shown = task_evidence(200, 200, 95.0)
    assert shown["decision"] == "passed" and shown["top1_ci95_pct"][0] == pytest.approx(98.115,
                                                                                        abs=1e-3)
    assert shown["flip_rate_not_ruled_out_pct"] == pytest.approx(1.885, abs=1e-3)
    assert "flip rates above 1.9 % are ruled out" in shown["certainty"]
    few = task_evidence(16, 16, 95.0)  # the bundle's 16 references: cannot decide
    assert few["decision"] == "undecided"
    assert ("95 % interval 80.6-100.0 %: too few images to decide at the 95 % bar (a flip "
            "rate up to 19.4 % cannot be ruled out; about 73 images") in few["certainty"]
    assert task_evidence(193, 200, 95.0)["decision"] == "undecided"  # 93.0-98.3 %
    assert task_evidence(199, 200, 95.0)["decision"] == "passed"  # 97.2 %
    assert task_evidence(150, 200, 95.0)["decision"] == "failed"  # 68.6-80.5 %
    assert "whole interval is below the bar" in task_evidence(150, 200, 95.0)["certainty"]
    assert task_evidence(0, 0, 95.0)["decision"] == "undecided"
    with pytest.raises(FidelityError, match=r"received top-1 agreement 5/4: expected"):
        task_evidence(5, 4)


def test_decide_is_one_rule_for_every_number_of_images():
    from sc2deploy.targets.gate import decide, refuted

    def task(agree, n, kl=0.001):
        return {"top1_agree": agree, "images": n, "kl_mean": kl}

    passed = decide("int8", {}, task(200, 200))
    assert passed["passed"] and passed["decision"] == "passed" and passed["min_top1_pct"] == 95.0
    assert passed["rule"] == ("task: 95 % lower bound of the top-1 agreement >= 95 % (on 200 "
                              "images: 98.1 %) and mean KL <= 0.01 nats")
    assert passed["evidence"]["images"] == 200 and not refuted(passed)
    on_device = decide("int8", {}, task(16, 16))  # over ssh or emulated: the same rule
    assert not on_device["passed"] and on_device["decision"] == "undecided"
    assert not refuted(on_device)  # too few to refute either
    assert "a flip rate up to 19.4 % cannot be ruled out" in on_device["evidence"]["certainty"]
    shifted = decide("int8", {}, task(200, 200, kl=0.02))
    assert shifted["decision"] == "failed" and refuted(shifted)
    assert decide("int8", {}, task(199, 200), min_top1=98.0)["decision"] == "undecided"
    assert decide("fp16", {"agreement_pct": 99.95}, None)["decision"] == "passed"
    fp32 = decide("fp32", _stats(99.0, mismatches=100), task(200, 200))
    assert fp32["rule"] == "symbols: exact bar .5 ties" and refuted(fp32)
