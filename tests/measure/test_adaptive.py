"""The adaptive ladder policy (issue 22): throughput estimate, byte prediction, the choice with
hysteresis and energy floor."""


import numpy as np
import pytest

from sc2deploy.errors import UsageError
from sc2deploy.measure.adaptive import (BytePredictor, Point, Policy, PolicyOptions,
                                        ThroughputEstimator, choose, choose_energy)
from sc2deploy.measure.links import BUILTIN

# A synthetic 3-point ladder: device 20 ms, server 5 ms per image. At 37.5 kbit/s all three
# fit a 500 ms deadline (1,500 B: 345 ms); at 5.5 kbit/s only 300 B does (461 ms).
LADDER = [Point("b300", 87.0, 300, 0.020, 0.005, energy_j=0.05),
          Point("b600", 94.0, 600, 0.020, 0.005, energy_j=0.06),
          Point("b1500", 98.0, 1500, 0.020, 0.005, energy_j=0.08)]
SMALL, MID, BIG = LADDER
DEADLINE_S = 0.5


def test_estimator_converges_to_a_constant_rate():
    estimator = ThroughputEstimator(37500)
    for _ in range(30):
        estimator.observe(1000, 8 * 1000 / 30000)
    assert estimator.bps == pytest.approx(30000, rel=1e-3)


def test_estimator_takes_a_drop_after_one_transfer():
    estimator = ThroughputEstimator(37500)
    estimator.observe(1500, 8 * 1500 / 5500)
    assert estimator.bps == pytest.approx(5500)


def test_the_policy_settles_on_the_smallest_point_after_a_drop():
    """At the 15 kbit/s the late send shows, 600 B would fit (345 ms); the policy still
    sends the next image on 300 B (the link may be draining the late one), then moves up."""
    def after_drop(settle):
        policy = Policy(LADDER, ThroughputEstimator(37500), PolicyOptions(DEADLINE_S,
                                                                           settle=settle))
        first = policy.decide(0)
        assert first.point == BIG
        policy.observe(first, 1500, 8 * 1500 / 15000)
        return policy, policy.decide(1)

    policy, settle = after_drop(1)
    assert settle.point == SMALL and settle.reason.startswith("settling after a drop")
    policy.observe(settle, 300, 8 * 300 / 20000)
    assert policy.decide(2).point == MID  # ~16 kbit/s: 600 B in 325 ms, within the margin
    assert after_drop(0)[1].point == MID
    relaxed = Policy(LADDER, ThroughputEstimator(37500), PolicyOptions(2.0))
    first = relaxed.decide(0)
    relaxed.observe(first, 1500, 8 * 1500 / 15000)  # a drop, but the send was in time
    assert relaxed.estimator.dropped and "settling" not in relaxed.decide(1).reason


def test_the_policy_holds_for_what_the_transport_resent():
    """A send whose request TCP partly sent again leaves those bytes on the link: the
    policy's hold is their time at the new estimate, then back to 0 after a clean send."""
    policy = Policy(LADDER, ThroughputEstimator(37500), PolicyOptions(DEADLINE_S))
    first = policy.decide(0)
    policy.observe(first, 1500, 8 * 1500 / 15000, resent_bytes=500)
    assert policy.hold_s == pytest.approx(8 * 500 / policy.estimator.bps)
    assert policy.estimator.bps == pytest.approx(15000)  # the drop, taken at once
    second = policy.decide(1)
    policy.observe(second, 300, 8 * 300 / 15000)
    assert policy.hold_s == 0
    with pytest.raises(UsageError, match="resent_bytes must be >= 0"):
        policy.observe(second, 300, 0.1, resent_bytes=-1)


def test_estimator_needs_two_fast_transfers_to_jump_up():
    estimator = ThroughputEstimator(5500)
    estimator.observe(300, 8 * 300 / 37500)
    assert estimator.bps < 8000  # one fast send: an outlier, weighed harmonically
    estimator.observe(300, 8 * 300 / 37500)
    assert estimator.bps == pytest.approx(37500)


def test_estimator_prior_from_a_link_profile():
    assert ThroughputEstimator.from_link(BUILTIN["lora-ideal-37.5k"], 1000).bps == \
        pytest.approx(37500)
    framed = ThroughputEstimator.from_link(BUILTIN["lora-sx1276-20dbm"], 255).bps
    assert 30000 < framed < 37500  # the 37.5 kbit/s LoRa link delivers less: preamble, header


def test_estimator_rejects_bad_input():
    with pytest.raises(UsageError, match="prior_bps must be a positive number"):
        ThroughputEstimator(0)
    with pytest.raises(UsageError, match="seconds > 0"):
        ThroughputEstimator(1000).observe(10, 0)


def test_byte_predictor_falls_back_to_reference_then_averages_recent():
    predictor = BytePredictor({"b300": 300, "b600": 600}, recent=2)
    assert predictor.predict("b300") == 300
    for size in (400, 500, 700):
        predictor.observe("b300", size)
    assert predictor.predict("b300") == 600  # the last two
    assert predictor.predict("b600") == 600  # never sent: the reference
    with pytest.raises(UsageError, match="unknown ladder point 'b9'; known: b300, b600"):
        predictor.predict("b9")


def test_choose_the_most_accurate_point_that_fits():
    assert choose(LADDER, 37500, DEADLINE_S).point == BIG
    assert choose(LADDER, 15000, DEADLINE_S).point == MID  # 1,500 B: 825 ms
    choice = choose(LADDER, 5500, DEADLINE_S)
    assert choice.point == SMALL and choice.fits


def test_choose_the_smallest_when_none_fits():
    choice = choose(LADDER, 3000, DEADLINE_S)
    assert choice.point == SMALL and not choice.fits
    assert choice.reason.startswith("none fits")


def test_choose_moves_up_only_with_the_margin_and_down_at_once():
    rate = 12000 / 0.45  # 1,500 B: 475 ms, within the deadline but not within 450 ms
    assert choose(LADDER, rate, DEADLINE_S).point == BIG  # no current point: no margin
    kept = choose(LADDER, rate, DEADLINE_S, current=MID, hysteresis=0.1)
    assert kept.point == MID and kept.reason.startswith("kept")
    assert choose(LADDER, 12000 / 0.4, DEADLINE_S, current=MID).point == BIG
    down = choose(LADDER, 12000 / 0.48, DEADLINE_S, current=BIG)  # 1,500 B: 505 ms
    assert down.point == MID and down.reason.startswith("down")


def test_the_policy_does_not_flap_on_a_noisy_constant_rate():
    """The rate puts the 1,500 B point exactly on the deadline; each send is ±10 % off."""
    rate = 12000 / (DEADLINE_S - 0.025)

    def switches(hysteresis):
        rng = np.random.default_rng(0)
        policy = Policy(LADDER, ThroughputEstimator(rate), PolicyOptions(DEADLINE_S, hysteresis))
        used = []
        for i in range(300):
            decision = policy.decide(i)
            used.append(decision.point.name)
            nbytes = decision.point.bytes
            policy.observe(decision, nbytes, 8 * nbytes / rate * rng.uniform(0.9, 1.1))
        return sum(a != b for a, b in zip(used, used[1:]))

    assert switches(0.1) <= 2
    assert switches(0.0) >= 30  # the same noise without hysteresis flaps


def test_energy_mode_takes_the_least_energy_above_the_floor():
    # radio at 0.396 W: 300 B 0.025 J, 600 B 0.051 J, 1,500 B 0.127 J (+ device 0.05-0.08 J)
    choice = choose_energy(LADDER, 37500, 90.0, tx_watts=0.396)
    assert choice.point == MID and choice.fits  # 300 B costs less but is below 90 %
    assert choose_energy(LADDER, 37500, 80.0, tx_watts=0.396).point == SMALL
    above = choose_energy(LADDER, 37500, 99.0, tx_watts=0.396)
    assert above.point == BIG and not above.fits


def test_energy_mode_needs_energies():
    bare = [Point("a", 90, 100, 0, 0), Point("b", 95, 200, 0, 0, energy_j=0.1)]
    with pytest.raises(UsageError, match="energy mode needs every point's device energy_j"):
        choose_energy(bare, 37500, 90.0)
    assert choose_energy(bare[:1], 37500, 80.0, tx_watts=0.4).point.name == "a"


def test_policy_energy_mode_reports_joules():
    options = PolicyOptions(DEADLINE_S, top1_floor=90.0, tx_watts=0.396)
    decision = Policy(LADDER, ThroughputEstimator(37500), options).decide(0)
    assert decision.point == MID
    assert decision.predicted_j["b600"] == pytest.approx(0.06 + 0.396 * 4800 / 37500)


def test_policy_observe_takes_the_latency_off_the_send():
    policy = Policy(LADDER, ThroughputEstimator(37500), PolicyOptions(1.0, latency_s=0.1))
    decision = policy.decide(0)
    policy.observe(decision, 1500, 0.1 + 12000 / 37500)
    assert policy.estimator.bps == pytest.approx(37500)
    assert decision.predicted_s["b1500"] == pytest.approx(0.02 + 0.1 + 0.32 + 0.005)
