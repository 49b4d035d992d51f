"""Latency distributions from raw samples (box = quartiles, whiskers 1.5 IQR) and CDFs."""

import numpy as np
import pytest

from tests.helpers.results_factory import make_result

pytest.importorskip("matplotlib", reason="reports need matplotlib (pip install .[report])")

from sc2deploy.report.captions import caption  # noqa: E402
from sc2deploy.report.distributions import (cdf_points, cdf_results, plot_latency_cdf,  # noqa
                                            plot_stage_latency, tukey)


def test_cdf_from_samples_is_monotone_and_ends_at_one():
    times = np.random.default_rng(1).lognormal(3.0, 0.4, 500)
    x, y = cdf_points(times)
    assert np.all(np.diff(x) >= 0) and np.all(np.diff(y) > 0)
    assert y[0] == pytest.approx(1 / 500) and y[-1] == 1.0
    assert x[int(np.searchsorted(y, 0.5))] == pytest.approx(np.median(times), rel=0.01)


def test_tukey_box_quartiles_whiskers_and_outliers():
    t = tukey(np.array([1.0, 2, 3, 4, 5, 6, 7, 8, 100]))
    assert (t["q1"], t["median"], t["q3"]) == (3.0, 5.0, 7.0)
    assert (t["low"], t["high"]) == (1.0, 8.0)  # within 1.5 IQR = 6 of the box
    assert list(t["outliers"]) == [100.0]


def test_old_results_fall_back_to_summaries_and_say_so():
    new = make_result("new")
    old = make_result("old", version=2)
    have, missing = cdf_results([new, old])
    assert [n for n, _ in have] == ["new"] and missing == ["old"]
    assert "No raw samples for old" in caption("stages", [new, old], [])
    assert "Not drawn, no raw samples (schema version ≤ 2): old" in caption("cdf", [new, old], [])
    assert "No raw samples" not in caption("stages", [new], [])
    fig = plot_stage_latency([new, old])
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "whiskers: 1.5 IQR" in legend and "no samples: p50–p90, min–p99" in legend
    cdf = plot_latency_cdf([new, old])
    assert [t.get_text() for t in cdf.legends[0].get_texts()] == ["new (device, n = 50)"]
    assert any("no samples (not drawn): old" in t.get_text() for t in cdf.axes[0].texts)


def test_no_stage_the_configuration_does_not_have():
    head_only = make_result("srv", kind="server", version=2)  # version 2 timed a decoder
    head_only["decoder"] = {"present": False, "note": "head-only checkpoint"}
    titles = [ax.get_title(loc="left") for ax in plot_stage_latency([head_only]).axes]
    assert titles == ["stage: decode", "stage: total"]
    with_decoder = make_result("srv", kind="server")
    titles = [ax.get_title(loc="left") for ax in plot_stage_latency([with_decoder]).axes]
    assert titles == ["stage: decode", "stage: decoder", "stage: total"]
