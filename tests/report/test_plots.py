"""End-to-end figure: one axis per part; measured streams beside their modeled rows."""

import copy

import pytest

from sc2deploy.report.data import end_to_end_bars
from sc2deploy.report.tables import end_to_end_table
from tests.helpers.results_factory import make_result, sample_times, stats

pytest.importorskip("matplotlib", reason="reports need matplotlib (pip install .[report])")

from sc2deploy.report.plots import plot_end_to_end  # noqa: E402


def _stream(doc: dict, reply: bool = True) -> dict:
    """A measured split-pipeline document (docs/results.md), with a "reply" stage or not."""
    keep = ("schema", "schema_version", "complete", "label", "created_utc", "bundle", "target",
            "coder", "bytes", "link", "conditions")
    s = {k: copy.deepcopy(doc[k]) for k in keep}
    s.update(kind="stream", label=f"{doc['label']} stream", server="http://10.213.0.1:8000",
             images=50, answered=50, refused=0, duplicates=0, retries=0, replayed=0,
             predictions=[])
    s["latency_ms"] = {"encode": stats(50.0), "transfer": stats(700.0), "server": stats(9.0),
                       "total": stats(790.0)} | ({"reply": stats(30.0)} if reply else {})
    s["samples"] = sample_times(s["latency_ms"])
    return s


def _titles(fig):
    return [ax.get_title(loc="left") for ax in fig.axes]


def test_one_axis_per_part_readable_at_any_link_speed():
    fast = make_result("fast", head_ms=40.0, baselines=False)
    slow = make_result("slow", head_ms=4.0, bytes_mean=90_000.0, baselines=False)
    fig = plot_end_to_end([fast, slow])
    assert _titles(fig) == ["device (p50)", "link", "server (p50)", "total (sum)"]
    device, link = fig.axes[:2]
    assert device.get_xlim()[1] < 100 < link.get_xlim()[1]  # ms and seconds, each readable
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "link: modeled delay of the mean payload" in legend
    hatches = {p.get_hatch() for p in link.patches}
    assert hatches == {"///"}  # the link model's delay: modeled, hatched


def test_measured_streams_sit_beside_their_modeled_rows():
    a, b = make_result("a"), make_result("b", target="onnx-int8")
    stream = _stream(a)
    bars = end_to_end_bars([a, b, stream])
    assert [bar.short for bar in bars[:3]] == ["a", "a stream", "b"]
    assert bars[1].measured and bars[1].reply == 30.0 and bars[1].link == 700.0
    fig = plot_end_to_end([a, b, stream])
    assert _titles(fig) == ["device (p50)", "link", "server (p50)", "reply (p50)",
                            "total (sum)"]
    link = fig.axes[1]
    assert [p.get_hatch() for p in link.patches][:3] == ["///", None, "///"]
    rows = end_to_end_table([a, b, stream]).rows
    assert rows[1][:3] == ["a stream", "measured", "50.0"] and rows[0][1] == "modeled link"


def test_a_report_with_a_stream_document(tmp_path):
    from sc2deploy.report.document import write_report

    a = make_result("a")
    stream = _stream(a, reply=False)
    write_report([a, stream], tmp_path / "rep", ("md",))
    md = (tmp_path / "rep" / "report.md").read_text()
    e2e = md.split("## End-to-end latency", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in e2e.splitlines() if line.startswith("| a")]
    assert rows[0].startswith("| a | modeled link |")
    assert rows[1].startswith("| a stream | measured | 50.0 | lora-sx1276-20dbm | 700 | 9.00 "
                              "(measured) | 759 |")  # the sum of the stages' p50
    assert "reply" not in e2e  # no stage the configuration does not have
    assert "| a stream | complete | stream | demo | onnx |" in md  # in the overview


def test_a_stream_that_reached_nothing_is_not_drawn_as_a_measurement(tmp_path):
    from sc2deploy.report.document import write_report

    a = make_result("a")
    down = _stream(a, reply=False)
    down.update(complete=False, answered=0, label="down")
    short = _stream(a, reply=False)
    short.update(complete=False, answered=40, label="short")
    assert [b.short for b in end_to_end_bars([a, down, short])][:2] == [
        "a", "short [40/50 answered]"]  # unanswered images are not an interruption
    write_report([a, down, short], tmp_path / "rep", ("md",))
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "Not drawn: down [0/50 answered]: no image was answered" in md
    assert "Streams with images refused or never answered: down [0/50 answered], short" in md
    assert "[partial (interrupted)]" not in md and "| partial (interrupted) |" not in md
    e2e = md.split("## End-to-end latency", 1)[1].split("\n## ", 1)[0]
    assert "| down" not in e2e


def test_an_interrupted_stream_is_named_partial():
    a = make_result("a")
    cut = _stream(a)
    cut.update(complete=False, interrupted=True, answered=20)
    assert end_to_end_bars([a, cut])[1].short == "a stream [partial (interrupted)]"
