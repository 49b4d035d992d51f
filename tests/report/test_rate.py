"""Rate–accuracy and rate–agreement figures: targets, sweeps as curves, JPEG/WebP curves."""

import pytest

from tests.helpers.results_factory import make_evaluation

pytest.importorskip("matplotlib", reason="reports need matplotlib (pip install .[report])")

from sc2deploy.report.rate import (baseline_series, plot_rate_accuracy,  # noqa: E402
                                   plot_rate_agreement, target_series)


def _sweep():
    return [make_evaluation(f"beta={beta}", sha=f"{i}" * 64,
                            targets=(("onnx", size, k), ("onnx-int8", size * 1.01, k - 2)),
                            baselines=i == 0)
            for i, (beta, size, k) in enumerate([(0.32, 3000.0, 70), (0.08, 5000.0, 75),
                                                 (1.28, 1800.0, 60)])]


def test_a_sweep_is_one_curve_per_target_ordered_by_bytes():
    series = target_series(_sweep())
    assert list(series) == [("demo", "onnx"), ("demo", "onnx-int8")]
    assert [name for name, _ in series[("demo", "onnx")]] == ["beta=1.28", "beta=0.32",
                                                              "beta=0.08"]
    jpeg = baseline_series(_sweep())[("jpeg", "teacher")]
    assert [r["quality"] for r in jpeg] == [10, 30, 50, 70, 90]


def test_figures_have_log_bytes_ci_bars_and_their_legends():
    fig = plot_rate_accuracy(_sweep())
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel().startswith("bytes per image, mean (log scale)")
    assert ax.get_ylabel() == "top-1 accuracy (%), 95 % Wilson CI"
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["JPEG (teacher), quality 10–90", "WebP (teacher), quality 10–90",
                      "demo / onnx (3 evaluations)", "demo / onnx-int8 (3 evaluations)"]
    names = [t.get_text() for t in ax.texts]
    assert names.count("beta=0.32") == 1 and "q50" in names  # evaluations named once
    agreement = plot_rate_agreement(_sweep())
    legend = [t.get_text() for t in agreement.legends[0].get_texts()]
    assert legend == ["demo / onnx (3 evaluations)", "demo / onnx-int8 (3 evaluations)"]
    one = plot_rate_accuracy([make_evaluation(baselines=False)])  # single points, no curve
    assert [t.get_text() for t in one.legends[0].get_texts()] == ["demo / onnx",
                                                                  "demo / onnx-int8"]


def test_targets_at_one_point_are_offset_so_each_is_seen():
    same = [(t, 3000.0, 70) for t in ("onnx", "onnx-fp16", "onnx-int8", "tflite", "tflite-fp16",
                                      "tflite-int8")]
    fig = plot_rate_accuracy([make_evaluation(targets=same, baselines=False)])
    ax = fig.axes[0]
    xs = sorted(float(line.get_xdata()[0]) for line in ax.lines if len(line.get_xdata()))
    assert len(set(xs)) == 6 and 3000 / 1.06 < xs[0] < xs[-1] < 3000 * 1.06
    assert "offset by up to ±5 %" in ax.get_xlabel()
