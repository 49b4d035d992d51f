"""The adaptive policy replayed on a modeled LoRa-like rate trace (issue 22), and trace files."""

import json

import pytest

from sc2deploy.errors import UsageError
from sc2deploy.measure.adaptive import Point
from sc2deploy.measure.adaptive import PolicyOptions
from sc2deploy.measure.replay import (ReplayOptions, check_trace, default_duration_s, document,
                                      load_trace, rate_at, replay, replay_ladder,
                                      transfer_seconds)
from sc2deploy.results.schema import validate

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


RATE_CHANGE = [(0.0, 37500.0), (30.0, 5500.0), (60.0, 37500.0)]  # kbit/s 37.5 -> 5.5 -> 37.5


def test_rate_at_and_the_default_duration():
    assert [rate_at(RATE_CHANGE, t) for t in (0, 29.9, 30, 59, 60, 1e6)] == \
        [37500, 37500, 5500, 5500, 37500, 37500]
    assert default_duration_s(RATE_CHANGE) == 90  # the last segment lasts as the one before
    with pytest.raises(UsageError, match="a trace of one segment has no length: give "
                                         "--duration-s"):
        default_duration_s([(0, 37500)])


def test_the_document_records_every_choice_and_the_true_rate():
    result = replay(LADDER, RATE_CHANGE, DEADLINE_S, duration_s=90)
    doc = validate(document(result, RATE_CHANGE, LADDER, PolicyOptions(DEADLINE_S), label="x",
                            created_utc="2026-12-07T00:00:00Z", duration_s=90))
    a = doc["adaptive"]
    assert a["summary"] == {"images": 237, "met": 236, "hit_rate": pytest.approx(236 / 237),
                            "mean_top1": pytest.approx(95.122, abs=1e-3), "switches": 2}
    assert a["prior_bps"] == 37500 and a["mode"] == "deadline" and a["deadline_ms"] == 500
    slow = [i for i in doc["images"] if 30 <= i["start_s"] < 60]
    assert {i["true_bps"] for i in slow} == {5500}
    assert slow[0]["estimate_bps"] == pytest.approx(35560.3, rel=1e-5)  # from the straddling send
    assert [i["index"] for i in doc["images"] if not i["met"]] == [87]  # sent as it dropped
    assert {f["point"]: f["summary"]["met"] for f in doc["fixed"]} == \
        {"b300": 740, "b600": 393, "b1500": 174}
    assert [(s["fitting_point"], s["delay_images"], round(s["delay_s"], 2))
            for s in doc["switching"]] == [("b300", 1, 2.28), ("b1500", 1, 0.16)]


def test_replay_options_say_what_is_missing(tmp_path):
    base = dict(bundles=(tmp_path,), evaluations=(tmp_path,), trace=tmp_path / "t.json")
    with pytest.raises(UsageError, match="--min-top1 \\(energy mode\\) needs what energy to "
                                         "count: --link NAME|FILE"):
        ReplayOptions(**base, deadline_ms=500, min_top1=90)
    with pytest.raises(UsageError, match="--interval-ms must be a number >= 0, got -1"):
        ReplayOptions(**base, deadline_ms=500, interval_ms=-1)
    with pytest.raises(UsageError, match="--deadline-ms must be a positive number"):
        ReplayOptions(**base, deadline_ms=0)


def _trace(tmp_path):
    path = tmp_path / "sf7-sf12-sf7.json"
    path.write_text(json.dumps([list(s) for s in RATE_CHANGE]))
    return path


def test_replay_ladder_on_the_demo_ladder(ladder_bundles, ladder_evaluations_timed, tmp_path):
    """The demo ladder's measured points (~1,250, ~460, ~280 B; 20 + 5 ms; top-1 as stated by
    TRADEOFF_TOP1) on 37.5 -> 5.5 -> 37.5 kbit/s: 600 ms fits demo-beta0.1 when fast and
    never when slow, where only demo-beta3 fits (demo-beta1: ~0.7 s)."""
    ladder_evaluations = ladder_evaluations_timed
    options = ReplayOptions(tuple(b.path for b in ladder_bundles), tuple(ladder_evaluations),
                            _trace(tmp_path), 600.0)
    result, doc = replay_ladder(options)
    validate(doc)
    evaluations = [json.loads(p.read_text()) for p in ladder_evaluations]
    points = doc["adaptive"]["points"]
    assert [p["name"] for p in points] == ["demo-beta0.1", "demo-beta1", "demo-beta3"]
    for point, evaluation in zip(points, evaluations):
        (onnx,) = [t for t in evaluation["targets"] if t["target"] == "onnx"]
        assert point["bytes"] == onnx["bytes"]["mean"] and point["top1"] == onnx["top1"]["pct"]
        assert point["bundle"] == evaluation["bundle"]["manifest_sha256"]
    print(result.table())
    adaptive = result.adaptive.summary
    chosen = {i["point"] for i in doc["images"] if 35 <= i["start_s"] < 60}
    assert doc["images"][0]["point"] == "demo-beta0.1"
    assert "demo-beta3" in chosen and chosen <= {"demo-beta1", "demo-beta3"}
    assert doc["images"][-1]["point"] == "demo-beta0.1"
    assert adaptive.hit_rate >= 0.95 and 2 <= adaptive.switches <= 5  # settling: one more
    fixed = {name: run.summary for name, run in result.fixed.items()}
    assert fixed["demo-beta3"].hit_rate == 1.0
    for name in ("demo-beta0.1", "demo-beta1"):  # slow: ~1.8 s and ~0.7 s an image
        assert fixed[name].hit_rate < adaptive.hit_rate, name
    assert adaptive.mean_top1 > fixed["demo-beta3"].mean_top1
    assert [s.fitting_point for s in result.switching] == ["demo-beta3", "demo-beta0.1"]
    drop, rise = result.switching
    slow = [i for i in doc["images"] if 30 <= i["start_s"] < 60]
    late = [i for i in slow if i["point"] != "demo-beta3"]
    print(f"slow: {len(slow)} images, {len(late)} not on demo-beta3, "
          f"{sum(not i['met'] for i in late)} of them late; drop after {drop.delay_images}")
    # images sent back to back: the slow third holds the images in flight as the rate drops
    assert sum(not i["met"] for i in slow) <= 15 and drop.delay_s < 12.0
    assert rise.delay_s < 1.0


def test_replay_ladder_energy_mode_sends_the_least_radio_energy(ladder_bundles,
                                                                ladder_evaluations, tmp_path):
    options = ReplayOptions(tuple(b.path for b in ladder_bundles), tuple(ladder_evaluations),
                            _trace(tmp_path), 5000.0, min_top1=90.0, link="lora-ideal-37.5k")
    _, doc = replay_ladder(options)
    eligible = [p for p in doc["adaptive"]["points"] if p["top1"] >= 90.0]
    least = min(eligible, key=lambda p: p["bytes"])["name"]
    assert doc["adaptive"]["mode"] == "energy" and doc["adaptive"]["tx_watts"] > 0
    assert {i["point"] for i in doc["images"]} == {least}
