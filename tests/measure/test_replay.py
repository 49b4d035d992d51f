"""The adaptive policy replayed on a modeled LoRa-like rate trace (issue 22), and trace files."""

import json

import pytest

from sc2deploy.errors import UsageError
from sc2deploy.measure.adaptive import Point
from sc2deploy.measure.replay import check_trace, load_trace, replay, transfer_seconds

# A synthetic 3-point ladder: device 20 ms, server 5 ms per image. At 37.5 kbit/s all three
# fit a 500 ms deadline (1,500 B: 345 ms); at 5.5 kbit/s only 300 B does (461 ms).
LADDER = [Point("b300", 87.0, 300, 0.020, 0.005, energy_j=0.05),
          Point("b600", 94.0, 600, 0.020, 0.005, energy_j=0.06),
          Point("b1500", 98.0, 1500, 0.020, 0.005, energy_j=0.08)]
DEADLINE_S = 0.5


def test_transfer_integrates_the_piecewise_rate():
    trace = [(0, 1000), (1, 100)]
    assert transfer_seconds(trace, 0.0, 500) == pytest.approx(0.5)
    assert transfer_seconds(trace, 0.5, 600) == pytest.approx(0.5 + 1.0)
    assert transfer_seconds(trace, 3.0, 100) == pytest.approx(1.0)


@pytest.mark.parametrize("trace, duration_s, period_s", [
    ([(0, 37500), (20, 5500), (100, 37500)], 120, None),  # back to back
    ([(0, 37500), (30, 5500), (90, 37500)], 120, 1.0),  # one image a second
], ids=["back-to-back", "period-1s"])
def test_replay_adapts_to_a_spreading_factor_change(trace, duration_s, period_s):
    result = replay(LADDER, trace, DEADLINE_S, duration_s=duration_s, period_s=period_s)
    print(result.table())
    adaptive = result.adaptive.summary
    assert adaptive.hit_rate >= 0.95
    for name, run in result.fixed.items():
        fixed = run.summary
        assert fixed.hit_rate <= 0.8 or fixed.mean_top1 < adaptive.mean_top1, name
        if fixed.hit_rate >= 0.95:
            assert adaptive.mean_top1 > fixed.mean_top1, name
    assert result.fixed["b300"].summary.hit_rate == 1.0  # the only point meeting it throughout
    assert [s.fitting_point for s in result.switching] == ["b300", "b1500"]
    for switch in result.switching:
        assert switch.delay_images is not None and switch.delay_images <= 2, switch
    assert adaptive.switches == 2


def test_replay_records_what_each_image_did():
    result = replay(LADDER, [(0, 37500), (5, 5500)], DEADLINE_S, duration_s=10)
    first = result.adaptive.records[0]
    assert (first.point, first.top1, first.met) == ("b1500", 98.0, True)
    assert first.actual_s == pytest.approx(first.predicted_s) == pytest.approx(0.345)
    assert first.estimate_bps == 37500  # the prior: the trace's first rate
    assert all(r.point == "b300" and r.met for r in result.adaptive.records[-5:])


def test_load_trace_reads_json_and_csv(tmp_path):
    (tmp_path / "t.json").write_text(json.dumps({"segments": [[0, 37500], [30, 5500]]}))
    (tmp_path / "t.csv").write_text("t_start_s,bits_per_s\n0,37500\n30,5500\n")
    assert load_trace(tmp_path / "t.json") == load_trace(tmp_path / "t.csv") == \
        [(0.0, 37500.0), (30.0, 5500.0)]


@pytest.mark.parametrize("name, text, message", [
    ("t.json", "[]", "empty"),
    ("t.json", "[[0, 37500], [30, 5500], [30, 300]]", "segment 2 starts at 30 s, not after"),
    ("t.json", "[[0, 37500], [10, 0]]", "segment 1 has rate 0 bit/s; rates must be > 0"),
    ("t.json", "[[5, 37500]]", "the first segment starts at 5 s; it must start at 0"),
    ("t.json", "[[0, \"fast\"]]", "segment 0 is .*expected two numbers"),
    ("t.json", "{\"rates\": []}", "a mapping with \"segments\""),
    ("t.json", "[[0, 1]", "not valid JSON"),
    ("t.csv", "t,rate\n0,1\n", "the first row must be the header t_start_s,bits_per_s"),
    ("t.csv", "t_start_s,bits_per_s\n", "empty"),
    ("t.csv", "t_start_s,bits_per_s\n0,-5\n", "rates must be > 0"),
    ("t.csv", "t_start_s,bits_per_s\n0,x\n", "row 2 is .*expected two numbers"),
    ("t.txt", "0 37500", "expected a .json or .csv file"),
])
def test_load_trace_says_what_is_wrong(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(UsageError, match=message):
        load_trace(tmp_path / name)


def test_load_trace_missing_file(tmp_path):
    with pytest.raises(UsageError, match="trace not found"):
        load_trace(tmp_path / "none.csv")


def test_replay_checks_its_trace():
    with pytest.raises(UsageError, match="not after the previous"):
        check_trace([(0, 1), (0, 2)])
    with pytest.raises(UsageError, match="duration_s must be a positive number"):
        replay(LADDER, [(0, 37500)], DEADLINE_S, duration_s=0)
