"""The adaptive ladder in reports (issue 22): the timeline figure and the summary table from
an adaptive stream (measured) and a replay (modeled) of the 37.5 -> 5.5 -> 37.5 kbit/s trace."""

import pytest

from sc2deploy.report.adaptive import adaptive_docs, adaptive_table, timeline
from sc2deploy.report.document import figure_keys, write_report
from tests.helpers.results_factory import make_adaptive_stream, make_replay, make_result

pytest.importorskip("matplotlib", reason="reports need matplotlib (pip install .[report])")


def test_the_replay_timeline_has_the_true_rate_and_every_image():
    doc = make_replay()
    tl = timeline(doc, "r")
    assert tl.modeled and tl.x_label == "time (s)" and len(tl.x) == 237
    assert tl.points == ["b300", "b600", "b1500"]  # fewest bytes first
    assert tl.trace == [(0.0, 37500.0), (30.0, 5500.0), (60.0, 37500.0)] and tl.duration_s == 90
    assert tl.chosen[0] == "b1500" and tl.e2e_ms[0] == pytest.approx(345.0)
    assert sum(tl.met) == 236 and tl.deadline_ms == 500


def test_the_stream_timeline_measures_the_rate_of_each_send():
    tl = timeline(make_adaptive_stream(), "s")
    assert not tl.modeled and tl.x == list(range(7)) and tl.trace is None
    # 8 x (2,200 B container + 593 B overhead) / (600 - 25 ms transfer)
    assert tl.measured_bps[0] == pytest.approx(8 * 2793 / 0.575)
    assert tl.met == [True, True, False, True, True, True, True]


def test_the_table_compares_the_adaptive_run_with_every_fixed_point():
    docs = [make_result("demo/onnx"), make_adaptive_stream(), make_replay()]
    assert [n for _, n in adaptive_docs(docs)] == ["ladder/adaptive", "synthetic/replay"]
    rows = adaptive_table(docs).rows
    assert rows[0][:8] == ["ladder/adaptive", "adaptive", "measured", "2,500", "7",
                           "6/7 (85.7 %)", "96.6", "2"]
    assert rows[0][8] == "— (trace not recorded)"
    assert rows[1][:8] == ["synthetic/replay", "adaptive", "modeled", "500", "237",
                           "236/237 (99.6 %)", "95.1", "2"]
    assert rows[1][8] == ("30 s 37.5→5.5 kbit/s: b300 2.28 s, 1 image(s) before; "
                          "60 s 5.5→37.5 kbit/s: b1500 0.16 s, 1 image(s) before")
    fixed = {r[1]: (r[5], r[6]) for r in rows[2:]}
    assert fixed == {"b300 alone": ("740/740 (100.0 %)", "87.0"),
                     "b600 alone": ("393/426 (92.3 %)", "94.0"),
                     "b1500 alone": ("174/188 (92.6 %)", "98.0")}


def test_a_report_of_adaptive_runs_draws_the_timeline(tmp_path):
    docs = [make_adaptive_stream(), make_replay()]
    assert "adaptive" in figure_keys(docs) and "adaptive" not in figure_keys([make_result()])
    write_report(docs, tmp_path / "r", ("md", "png"))
    md = (tmp_path / "r" / "report.md").read_text()
    assert "## Adaptive ladder" in md and "![adaptive](adaptive_timeline.png)" in md
    assert "| synthetic/replay | b600 alone | modeled | 500 | 426 | 393/426 (92.3 %) |" in md
    assert (tmp_path / "r" / "adaptive_timeline.png").read_bytes()[:4] == b"\x89PNG"
    write_report([make_replay()], tmp_path / "only", ("md",))  # a replay alone: no profiles
    assert "1 results (0 device, 0 server, 1 replay)." in (tmp_path / "only" /
                                                           "report.md").read_text()


def test_the_figure_has_three_panels_per_run_on_a_shared_axis():
    from sc2deploy.report.adaptive_plot import plot_adaptive

    fig = plot_adaptive([make_adaptive_stream(), make_replay()])
    axes = fig.axes
    assert len(axes) == 6
    assert [ax.get_ylabel() for ax in axes[::2]] == ["point (fewest bytes low)",
                                                     "throughput (kbit/s)", "end to end (ms)"]
    replay_e2e = axes[5]
    assert replay_e2e.get_xlabel() == "time (s)"
    assert replay_e2e.get_shared_x_axes().joined(replay_e2e, axes[1])
