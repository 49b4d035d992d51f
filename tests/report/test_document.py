"""Reports: Markdown, self-contained HTML, CSV and PNG plots from results documents."""

import base64
import csv
import re
import struct

import pytest

from sc2deploy.errors import ResultsError
from sc2deploy.report.data import FIGURES
from sc2deploy.report.document import PLOTS, end_to_end_bars, figure_keys, names, write_report
from tests.helpers.results_factory import make_evaluation, make_replay, make_result

pytest.importorskip("matplotlib", reason="reports need matplotlib (pip install .[report])")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def sample_docs():
    return [
        make_result("demo/onnx"),
        make_result("demo/onnx-int8", target="onnx-int8", head_ms=22.0, bytes_mean=3100.0),
        make_result("demo/tflite", target="tflite", head_ms=55.0, energy="modeled",
                    bytes_mean=2950.0),
        make_result("ladon/onnx", head_ms=160.0, bytes_mean=9000.0, complete=False,
                    energy="none", server_ms=None),
        make_result("bq6/onnx", head_ms=30.0, bytes_mean=5000.0, link=False,
                    device_model="Jetson Orin Nano", energy_source="jetson"),
        make_result("server/decoder", kind="server"),
        make_evaluation(),
        make_replay(),  # modeled: the adaptive section only
    ]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "out"
    docs = sample_docs()
    html_path = write_report(docs, out)
    return docs, out, html_path


def test_writes_every_file(report):
    _, out, html_path = report
    assert html_path == out / "report.html"
    assert set(figure_keys(sample_docs())) == set(FIGURES)  # every figure has something to draw
    expected = {"report.md", "report.html", "results.csv", "tables"} | {
        f"{stem}.{fmt}" for stem in FIGURES.values() for fmt in ("png", "pdf", "svg")}
    assert expected == {p.name for p in out.iterdir()}  # and nothing else (no staging left)


def _png_size(data: bytes):
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("key", sorted(PLOTS))
def test_plots_are_real_pngs(report, key):
    _, out, _ = report
    data = (out / PLOTS[key]).read_bytes()
    width, height = _png_size(data)
    assert width == 1400 and height >= 500  # 7 in at 200 dpi
    assert len(data) > 15_000  # a drawn plot, not an empty canvas
    assert data.rstrip()[-8:] == b"IEND\xaeB`\x82"


def test_html_is_self_contained_and_embeds_every_plot(report):
    _, out, html_path = report
    text = html_path.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<style>" in text
    for bad in ('src="http', "src='http", 'href="http', "<link", "<script", "url(", "@import"):
        assert bad not in text.lower(), bad
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) == len(PLOTS)
    embedded = {base64.b64decode(i) for i in images}
    assert embedded == {(out / name).read_bytes() for name in PLOTS.values()}
    assert str(out) not in text


def test_markdown_references_plots_by_relative_path(report):
    _, out, _ = report
    md = (out / "report.md").read_text()
    for name in PLOTS.values():
        assert f"]({name})" in md
    assert str(out) not in md and "base64" not in md


def _section(md: str, title: str) -> str:
    return md.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_modeled_energy_is_labeled_in_md_and_csv(report):
    _, out, _ = report
    energy = _section((out / "report.md").read_text(), "Energy per image")
    row = next(line for line in energy.splitlines() if line.startswith("| demo/tflite |"))
    assert "modeled (rpi4)" in row and "(modeled)" in row
    measured = next(line for line in energy.splitlines() if line.startswith("| demo/onnx |"))
    assert "measured (ina2xx)" in measured and "modeled)" not in measured.split("|")[3]
    missing = next(line for line in energy.splitlines() if line.startswith("| server/decoder"))
    assert "no energy data" in missing
    rows = {r["label"]: r for r in csv.DictReader((out / "results.csv").open(newline=""))}
    assert rows["demo/tflite"]["energy_kind"] == "modeled"
    assert rows["demo/tflite"]["energy_source"] == "model:rpi4"
    assert rows["demo/onnx"]["energy_kind"] == "measured"
    assert rows["ladon/onnx"]["energy_kind"] == "none"


def test_partial_results_are_flagged_everywhere(report):
    _, out, html_path = report
    md_lines = [l for l in (out / "report.md").read_text().splitlines() if "ladon/onnx" in l]
    assert len(md_lines) >= 8  # overview, end-to-end, stages, bytes, energy, conditions...
    assert all("partial (interrupted)" in line for line in md_lines)
    html_rows = [r for r in re.findall(r"<tr[^>]*>.*?</tr>", html_path.read_text())
                 if "ladon/onnx" in r and not r.startswith("<tr><td>results</td>")]
    assert html_rows and all('class="partial"' in r and "partial (interrupted)" in r
                             for r in html_rows)
    rows = {r["label"]: r for r in csv.DictReader((out / "results.csv").open(newline=""))}
    assert rows["ladon/onnx"]["complete"] == "false"
    assert rows["ladon/onnx"]["status"] == "partial (interrupted)"
    assert rows["demo/onnx"]["complete"] == "true"


def test_csv_has_one_row_per_result_with_the_right_values(report):
    docs, out, _ = report
    with (out / "results.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    docs = [d for d in docs if d["kind"] not in ("evaluation", "replay")]  # no CSV row
    assert [r["label"] for r in rows] == [d["label"] for d in docs]
    for row, doc in zip(rows, docs):
        assert row["kind"] == doc["kind"]
        assert float(row["total_p50_ms"]) == pytest.approx(doc["latency_ms"]["total"]["p50"])
        assert float(row["total_p99_ms"]) == pytest.approx(doc["latency_ms"]["total"]["p99"])
        assert float(row["total_mean_ms"]) == pytest.approx(doc["latency_ms"]["total"]["mean"])
        assert float(row["peak_rss_mb"]) == pytest.approx(doc["memory"]["peak_rss_mb"])
        assert row["threads"] == "2" and row["coder"] == "c"
    onnx, int8, tflite, ladon, bq6, server = rows
    assert float(onnx["head_p50_ms"]) == pytest.approx(40.0)
    assert float(int8["head_p99_ms"]) == pytest.approx(docs[1]["latency_ms"]["head"]["p99"])
    assert float(onnx["bytes_mean"]) == 3000.0 and float(bq6["bytes_p99"]) == 6500.0
    assert onnx["target"] == "onnx" and int8["precision"] == "int8"
    assert float(onnx["energy_j_per_image_total"]) == pytest.approx(
        docs[0]["energy"]["joules_per_image"]["total"])
    lo, hi = docs[0]["energy"]["joules_per_image"]["ci95"]
    assert float(onnx["energy_j_per_image_ci95_lo"]) == pytest.approx(lo)
    assert float(onnx["energy_j_per_image_ci95_hi"]) == pytest.approx(hi)
    assert tflite["energy_j_per_image_ci95_lo"] == ""
    assert onnx["link_name"] == "lora-sx1276-20dbm" and bq6["link_name"] == ""
    assert float(onnx["link_delay_ms_mean"]) == pytest.approx(
        docs[0]["link"]["delay_ms"]["mean"])
    assert float(onnx["server_ms"]) == 12.0 and ladon["server_ms"] == ""
    assert float(onnx["end_to_end_ms_total"]) == pytest.approx(
        docs[0]["end_to_end_ms"]["total"])
    assert float(server["decoder_p50_ms"]) == pytest.approx(8.0) and server["head_p50_ms"] == ""
    assert server["bytes_mean"] == "" and server["energy_kind"] == "none"


def test_conditions_table_names_device_runtime_threads_and_energy_source(report):
    _, out, _ = report
    conditions = _section((out / "report.md").read_text(), "Conditions")
    for needle in ("Raspberry Pi 4 Model B Rev 1.5", "Jetson Orin Nano", "onnxruntime 1.31.1",
                   "measured (jetson)", "modeled (rpi4)", "threads", "performance"):
        assert needle in conditions, needle


def test_end_to_end_bars_add_baselines_through_the_same_link():
    docs = [make_result("a"), make_result("b", server_ms=None, link=False)]
    bars = end_to_end_bars(docs)
    # one baseline per (name, link, device): b has no link, so its baselines are separate bars
    assert [(b.short, b.link_name) for b in bars] == [
        ("a", "lora-sx1276-20dbm"), ("b", None),
        ("baseline jpeg-q75", "lora-sx1276-20dbm"), ("baseline webp-q75", "lora-sx1276-20dbm"),
        ("baseline jpeg-q75", None), ("baseline webp-q75", None)]
    a, b, jpeg = bars[:3]
    assert a.device == docs[0]["end_to_end_ms"]["device"] and a.server == 12.0
    assert b.link == 0.0 and not b.has_server and "no link" in b.notes
    base = docs[0]["baselines"][0]
    # not the student's decoder + tail time: a baseline has no server time of its own
    assert (jpeg.device, jpeg.link, jpeg.server) == (base["encode_ms_p50"], base["link_ms"], 0)
    assert not jpeg.has_server and "no server time: 0 ms" in jpeg.notes
    assert not bars[4].has_server
    assert bars[4].name == "baseline jpeg-q75 (no link)"


def test_duplicate_labels_get_unique_names():
    docs = [make_result("x"), make_result("x"), make_result("x", complete=False)]
    assert names(docs) == ["x", "x #2", "x #3 [partial (interrupted)]"]


def test_minimal_reports_render(tmp_path):
    lone = make_result("lone", energy="none", link=False, server_ms=None, baselines=False)
    write_report([lone], tmp_path / "one", ("md", "latex"))
    md = (tmp_path / "one" / "report.md").read_text()
    assert "no energy data" in md and "0 (none given)" in md
    assert {p.name for p in (tmp_path / "one").glob("*.png")} == {
        PLOTS[k] for k in ("end_to_end", "stages", "cdf", "pareto", "energy")}
    write_report([make_result("srv", kind="server", decoder=False)], tmp_path / "server",
                 ("html",))
    # a server alone: its stages (no decoder: the bundle has none) and CDF; html only
    assert sorted(p.name for p in (tmp_path / "server").iterdir()) == ["report.html"]
    html = (tmp_path / "server" / "report.html").read_text()
    assert html.count("<img ") == 2 and "<td>decoder</td>" not in html


def test_refuses_nothing_and_invalid_documents(tmp_path):
    with pytest.raises(ResultsError, match="nothing to report"):
        write_report([], tmp_path)
    bad = make_result("broken")
    bad["bytes"]["mean"] = "many"
    with pytest.raises(ResultsError, match=r"result #2 \('broken'\): bytes\.mean: expected a "
                                           r"number, got 'many'"):
        write_report([make_result(), bad], tmp_path / "out")
    assert not (tmp_path / "out").exists()


XEON = "Intel(R) Xeon(R) Processor"


def _energy_rows(md: str) -> dict:
    rows = {}
    for line in _section(md, "Energy per image").splitlines():
        if line.startswith("| ") and not line.startswith("| configuration"):
            rows[line.split(" | ")[0][2:]] = line
    return rows


def test_host_timed_and_version_1_modeled_energy_are_labeled_and_have_no_ci(tmp_path):
    docs = [make_result("pi4/onnx"),  # measured, with a CI
            make_result("x86/onnx", energy="modeled", host_timed_on=XEON, device_model=None,
                        cpu=XEON),
            # version 1 files: the label is inferred from the recorded device
            make_result("old-x86/onnx", energy="modeled", device_model=None, cpu=XEON,
                        version=1),
            make_result("old-pi4/onnx", energy="modeled", version=1)]
    out = tmp_path / "rep"
    assert write_report(docs, out, ("md", "csv")) == out  # no html: the folder
    md = (out / "report.md").read_text()
    rows = _energy_rows(md)
    label = f"modeled (rpi4, host-timed on {XEON})"
    for name in ("x86/onnx", "old-x86/onnx"):
        assert label in rows[name] and f"(modeled, host-timed on {XEON})" in rows[name]
        assert "none: modeled" in rows[name]
    assert "modeled (rpi4) |" in rows["old-pi4/onnx"] and "host-timed" not in rows["old-pi4/onnx"]
    lo, hi = docs[3]["energy"]["joules_per_image"]["ci95"]  # stored by version 1: not shown
    assert f"{lo:.4g}" not in rows["old-pi4/onnx"] and "none: modeled" in rows["old-pi4/onnx"]
    m_lo, m_hi = docs[0]["energy"]["joules_per_image"]["ci95"]
    assert f"{m_lo:.4g} – {m_hi:.4g}" in rows["pi4/onnx"]
    assert f"x86/onnx: modeled energy host-timed on {XEON}" in md
    assert f"{label}" in _section(md, "Conditions")
    pareto = next(l for l in _section(md, "Bytes per image").splitlines()
                  if l.startswith("| x86/onnx |"))
    assert f"(modeled, host-timed on {XEON})" in pareto
    rows = {r["label"]: r for r in csv.DictReader((out / "results.csv").open(newline=""))}
    for name in ("x86/onnx", "old-x86/onnx"):
        assert rows[name]["energy_label"] == label
        assert rows[name]["energy_host_timed_on"] == XEON
        assert rows[name]["energy_j_per_image_ci95_lo"] == ""
    assert rows["old-pi4/onnx"]["energy_host_timed_on"] == ""
    assert rows["old-pi4/onnx"]["energy_j_per_image_ci95_hi"] == ""
    assert float(rows["pi4/onnx"]["energy_j_per_image_ci95_hi"]) == pytest.approx(m_hi)


def test_energy_plot_stacks_radio_and_draws_error_bars_on_measured_compute_only(monkeypatch):
    from matplotlib.axes import Axes

    from sc2deploy.report.plots import plot_energy

    error_rows, errorbar = [], Axes.errorbar

    def count_errorbar(ax, x, y, **kwargs):
        error_rows.append(y)
        return errorbar(ax, x, y, **kwargs)

    monkeypatch.setattr(Axes, "errorbar", count_errorbar)
    docs = [make_result("measured"), make_result("modeled", energy="modeled"),
            make_result("host", energy="modeled", host_timed_on=XEON),
            make_result("old", energy="modeled", version=1),  # version 1 stored a ci95
            make_result("no radio", link=False)]
    fig = plot_energy(docs)
    ax = fig.axes[0]
    assert error_rows == [0, 4]  # the measured results only
    bars = [(p.get_y(), p.get_x(), p.get_width(), p.get_hatch()) for p in ax.patches]
    compute = [b for b in bars if b[1] == 0]
    radio = [b for b in bars if b[1] > 0]
    assert [b[3] for b in compute] == [None, "///", "///", "///", None]
    assert len(radio) == 4 and all(b[3] == "\\\\\\" for b in radio)  # modeled, stacked
    for (_, left, width, _), doc in zip(radio, docs):  # after compute, the link's energy
        assert left == pytest.approx(doc["energy"]["joules_per_image"]["total"] * 1e3)
        assert width == pytest.approx(doc["link"]["radio_joules_per_image"] * 1e3)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert f"compute: modeled (rpi4, host-timed on {XEON})" in legend
    assert "compute: modeled (rpi4)" in legend and "compute: measured (ina2xx)" in legend
    assert "radio: modeled (link TX power × airtime)" in legend
    total = docs[0]["energy"]["joules_per_image"]["total"] + docs[0]["link"][
        "radio_joules_per_image"]
    assert ax.texts[0].get_text().endswith(f"= {total * 1e3:.3g} mJ")
    assert ax.get_xlabel() == "energy per image (mJ)"


def test_cli_summary_says_host_timed_and_prints_no_ci():
    from sc2deploy.report.summary import format_profile

    text = format_profile(make_result(energy="modeled", host_timed_on=XEON))
    line = next(l for l in text.splitlines() if l.strip().startswith("energy"))
    assert line.endswith(f"(modeled, model:rpi4, host-timed on {XEON})") and "±" not in line
    line = next(l for l in format_profile(make_result(energy="modeled")).splitlines()
                if l.strip().startswith("energy"))
    assert line.endswith("(modeled, model:rpi4)")


def test_formats_choose_what_is_written(tmp_path):
    from sc2deploy.errors import UsageError
    from sc2deploy.report.document import FORMATS, parse_formats

    assert parse_formats("all") == FORMATS and parse_formats(" SVG, html") == ("html", "svg")
    with pytest.raises(UsageError, match=r"--format 'html,gif': expected a comma-separated "
                                         r"list of html, md, png.*got 'gif'"):
        parse_formats("html,gif")
    with pytest.raises(UsageError, match="got nothing"):
        parse_formats(",")
    doc = make_result("srv", kind="server")
    write_report([doc], tmp_path / "a", ("svg", "csv"))
    out = tmp_path / "a"
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        "latency_cdf.svg", "latency_stages.svg", "results.csv",
        "tables/conditions_raspberry_pi_4_model_b_rev_1_5.csv", "tables/latency.csv",
        "tables/overview.csv", "tables/resources.csv", "tables/runs.csv"]
    write_report([doc], out, ("html",))  # a second report replaces files, keeps the others
    assert (out / "report.html").is_file() and (out / "latency_cdf.svg").is_file()
    assert not list(out.glob("*.png")) and not list(out.glob(".report-*"))


def test_two_evaluations_of_one_bundle_and_target_are_refused(tmp_path):
    good = make_evaluation("good", targets=(("onnx", 3000.0, 90),))
    bad = make_evaluation("bad", targets=(("onnx", 3000.0, 0),))
    other = make_evaluation("other", sha="ef" * 32, targets=(("onnx", 3000.0, 0),))
    with pytest.raises(ResultsError, match=r"result #1 \('good'\) and result #2 \('bad'\) both "
                       r"evaluate target onnx .*90.0 % on 100 images vs 0.0 %"):
        write_report([good, bad], tmp_path / "rep", ("md",))
    assert not (tmp_path / "rep").exists() or not any((tmp_path / "rep").iterdir())
    write_report([good, other], tmp_path / "ok", ("md",))  # another bundle: a curve
