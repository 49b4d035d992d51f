"""The worth-deploying comparison: envelope interpolation rules and the comparison of a
student's curve with JPEG/WebP at equal accuracy, on hand-made evaluations."""

import math

import pytest

from sc2deploy.measure.links import load_link
from sc2deploy.report.worth import (best_top1_within, compare, format_comparison, least_at,
                                    verdict)
from tests.helpers.results_factory import make_evaluation

POINTS = [(100.0, 50.0), (200.0, 70.0), (400.0, 65.0), (800.0, 90.0)]  # (value, top-1 %)


def test_least_at_interpolates_on_the_upper_envelope():
    assert least_at(POINTS, 80.0) == pytest.approx(500.0)  # (400, 65) is not on the envelope
    assert least_at(POINTS, 80.0, log=True) == pytest.approx(400.0)  # geometric mean
    assert least_at(POINTS, 40.0) == 100.0  # below the curve's first point: that point
    assert least_at(POINTS, 90.0) == 800.0 and least_at(POINTS, 90.5) is None
    assert least_at([(None, 99.0), (10.0, 60.0)], 70.0) is None  # unknown values are skipped


def test_best_top1_within_a_budget():
    assert best_top1_within(POINTS, 50.0) is None  # smaller than every point
    assert best_top1_within(POINTS, 100.0) == 50.0
    assert best_top1_within(POINTS, 400.0) == pytest.approx(80.0)  # log-linear 200 → 800
    assert best_top1_within(POINTS, 5000.0) == 90.0


def ladder(teacher_correct=95):
    """Three ladder points (onnx) and JPEG/WebP at two qualities each, 100 images."""
    docs = [make_evaluation(label=f"p{i}", model="entropic_student", targets=[("onnx", b, k)],
                            sha=f"{i:02d}" * 32, baselines=False) for i, (b, k) in enumerate(
                                [(2000.0, 94), (800.0, 92), (300.0, 80)])]
    for doc in docs:
        doc["targets"][0]["ms_p50"] = {"device": 20.0, "server": 5.0}
    docs[0]["teacher"] = {"file": "t.onnx", "sha256": "00" * 32, "images": 100,
                          "top1": {"correct": teacher_correct, "pct": float(teacher_correct),
                                   "ci95": [90.0, 98.0]},
                          "top5": {"correct": 100, "pct": 100.0, "ci95": [96.0, 100.0]}}
    docs[0]["baselines"] = [
        {"codec": codec, "quality": q, "model": "teacher", "images": 100,
         "bytes": {"mean": b, "p50": b, "min": b, "max": b},
         "top1": {"correct": k, "pct": float(k), "ci95": [0.0, 100.0]},
         "top5": {"correct": 100, "pct": 100.0, "ci95": [0.0, 100.0]},
         "ms_p50": {"device": 2.0, "server": 1.0}}
        for codec, q, b, k in (("jpeg", 10, 3000.0, 85), ("jpeg", 50, 9000.0, 95),
                               ("webp", 10, 1500.0, 80), ("webp", 50, 6000.0, 94))]
    return docs


def test_compare_states_bytes_time_and_energy_at_the_floor():
    doc = compare(ladder())
    assert doc["floor"] == 93.0 and doc["teacher_top1"] == 95.0
    rows = {(r["quantity"], r["link"]): r for r in doc["rows"]}
    by_bytes = rows[("bytes", None)]
    student = math.exp(math.log(800) + 0.5 * (math.log(2000) - math.log(800)))
    webp = math.exp(math.log(1500) + (13 / 14) * (math.log(6000) - math.log(1500)))
    jpeg = math.exp(math.log(3000) + 0.8 * (math.log(9000) - math.log(3000)))
    assert by_bytes["student"] == pytest.approx(student)
    assert by_bytes["baselines"] == {"jpeg": pytest.approx(jpeg), "webp": pytest.approx(webp)}
    assert by_bytes["best_baseline"] == "webp"
    assert by_bytes["ratio"] == pytest.approx(student / webp)
    lora = load_link("lora-sx1276-20dbm")
    e2e = rows[("e2e_ms", "lora-sx1276-20dbm")]
    mine = [25.0 + lora.delay_ms(b) for b in (800, 2000)]
    assert e2e["student"] == pytest.approx(mine[0] + 0.5 * (mine[1] - mine[0]))
    energy = rows[("joules", "wifi-80211n")]
    wifi = load_link("wifi-80211n")
    assert energy["student"] == pytest.approx(
        0.5 * sum(5.4 * 0.020 + wifi.radio_joules(b) for b in (800, 2000)))
    small = doc["smallest"][0]
    assert (small["point"], small["bytes"], small["top1"]) == ("p2", 300.0, 80.0)
    assert small["baselines"] == {"jpeg": None, "webp": None}  # none gets as small as 300 B


def test_the_words_say_when_nothing_is_gained():
    assert verdict(0.25, 10.0, "webp") == "4.0x less than webp"
    assert verdict(1.2, 10.0, "webp") == "no gain: dominated by webp"
    assert verdict(None, None, "webp") == "the student never reaches the floor"
    assert verdict(None, 10.0, None) == "no baseline reaches the floor"
    text = format_comparison(compare(ladder(), floor=99.0))
    assert "never reaches the floor" in text
    assert format_comparison(None).startswith("worth deploying: needs evaluations")


def test_no_comparison_without_baselines_or_students():
    docs = ladder()
    del docs[0]["baselines"]
    assert compare(docs) is None


def test_the_report_has_the_worth_deploying_section_and_figure(tmp_path):
    pytest.importorskip("matplotlib", reason="the report needs matplotlib")
    from sc2deploy.report.document import write_report

    write_report(ladder(), tmp_path / "report", formats=("md", "png", "csv"))
    text = (tmp_path / "report" / "report.md").read_text()
    assert "## Worth deploying" in text and "At top-1 >= 93.0 %" in text
    assert "| entropic_student / onnx | bytes per image |" in text
    assert "smallest point p2 (entropic_student / onnx): 300 B at top-1 80.0 %" in text
    assert (tmp_path / "report" / "worth_deploying.png").is_file()


def test_without_evaluate_times_only_bytes_are_compared():
    docs = ladder()
    del docs[1]["targets"][0]["ms_p50"]
    assert {r["quantity"] for r in compare(docs)["rows"]} == {"bytes"}
