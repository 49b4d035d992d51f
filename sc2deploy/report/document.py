"""Reports from profiling results: Markdown, self-contained HTML, CSV and PNG plots.

::

    results.json ... ─ validate ─┬─ tables ─┬─ report.md    (plots by relative path)
                                 │          └─ report.html  (plots as data: URIs, inline CSS)
                                 ├─ results.csv              (one row per results file)
                                 └─ plots (matplotlib, Agg) ─ *.png

Partial (interrupted) results are included and flagged wherever they appear;
modeled energy is labeled "modeled" in every table and plot ("modeled, host-timed
on CPU" when the time was measured on a machine other than the profile's device)
and never shown with a confidence interval. matplotlib is
imported only inside the plotting functions (``pip install 'sc2deploy[report]'``).
Evaluation documents (``sc2deploy evaluate``) feed the Accuracy table only: no plot, no
CSV row; a report of evaluations alone has just the overview line and that table.
"""

import base64
import html
import shutil
import tempfile
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

from sc2deploy.atomic import ensure_writable, make_readable, swap_in
from sc2deploy.errors import ResultsError
from sc2deploy.report.data import (NO_ENERGY, PARTIAL, PLOTS, device_key,
                                             end_to_end_bars, energy_kind_of, host_timed_on,
                                             names)
from sc2deploy.report.plots import (plot_bytes_latency, plot_end_to_end, plot_energy,
                                              plot_stage_latency)
from sc2deploy.report.tables import (Table, accuracy_table, baselines_table, bytes_table,
                                               device_conditions_table, end_to_end_table,
                                               energy_table, latency_table, overview_table,
                                               pareto_table, resources_table, run_conditions_table,
                                               write_csv)
from sc2deploy.results.schema import validate


CAPTIONS = {
    "end_to_end": "End-to-end latency per image, stacked: device = p50 of the total device "
                  "time (load + preprocess + head + code); link = delay of the mean payload on "
                  "the result's link model; server = the measured or given server time, 0 where "
                  "none was given (said next to the bar). Hatched bars: JPEG/WebP of the head's "
                  "input image through the same link (device = encode p50 including load, "
                  "resize and crop; server = the same server time as the result, assumed).",
    "stages": "Per-stage latency from the stored summary statistics (no raw samples, so no "
              "quartiles): box from p50 (thick line) to p90, whiskers from min to p99, "
              "diamond = mean, x = max.",
    "energy": "Energy per image (total board energy / images). Solid bars are measured (sensor "
              "named in the legend); hatched bars are modeled (time × a device power profile; "
              "not a measurement, so no error bars); \"host-timed on CPU\" marks a model "
              "applied to the time of a machine other than the profile's device. Error bars: "
              "95 % confidence interval over repeated windows (measured only); "
              "| = dynamic energy (total − idle baseline).",
    "pareto": "Mean bytes per image vs device latency p50 (total). The line is the Pareto "
              "front of the results (lower left is better); grey markers are JPEG/WebP "
              "baselines of the input image (encode p50), not included in the front. Hollow "
              "markers: partial (interrupted) results.",
}


def _notes(docs: Sequence[dict]) -> List[str]:
    all_names = names(docs)
    notes = []
    partial = [n for d, n in zip(docs, all_names) if not d["complete"]]
    if partial:
        notes.append(f"{PARTIAL}: {', '.join(partial)}. These runs were stopped early; their "
                     "numbers cover only the images measured before the interruption.")
    modeled = [n for d, n in zip(docs, all_names) if energy_kind_of(d) == "modeled"]
    if modeled:
        notes.append(f"Energy of {', '.join(modeled)} is modeled (time × a device power "
                     "profile), not measured, and has no confidence interval; see the energy "
                     "detail in the conditions.")
    for doc, name in zip(docs, all_names):
        host = host_timed_on(doc) if energy_kind_of(doc) == "modeled" else None
        if host is not None:
            notes.append(f"{name}: modeled energy host-timed on {host}: the time measured on "
                         "that CPU × the power profile of another device, so it shows the "
                         "pipeline, not that device's energy; profile on the device for that.")
    missing = [n for d, n in zip(docs, all_names) if energy_kind_of(d) == "none"]
    if missing:
        notes.append(f"{NO_ENERGY}: {', '.join(missing)}.")
    no_server = [b.name for b in end_to_end_bars(docs) if not b.baseline and not b.has_server]
    if no_server:
        notes.append(f"No server time given for {', '.join(no_server)}: end-to-end totals "
                     "count the server as 0 ms.")
    devices = sorted({device_key(d) for d in docs})
    if len(devices) > 1:
        notes.append(f"Results come from {len(devices)} devices ({', '.join(devices)}): "
                     "compare across devices with their conditions in mind.")
    return notes


def _split(docs: Sequence[dict]) -> Tuple[List[dict], List[dict]]:
    """(profiling results: device and server, evaluations: ``sc2deploy evaluate``)."""
    return ([d for d in docs if d["kind"] != "evaluation"],
            [d for d in docs if d["kind"] == "evaluation"])


ACCURACY_TEXT = ("Top-1/top-5 accuracy of each target's whole pipeline (head through its own "
                 "runtime, the real container, the tail) on the labeled images, with 95 % "
                 "Wilson intervals; mean bytes of the containers; how often its top-1 equals "
                 "the fp32 pipeline's (head.onnx).")


def _sections(docs: Sequence[dict]) -> List[Tuple[str, List[object]]]:
    """(title, blocks) where a block is a str paragraph, a Table or ("figure", key)."""
    profiles, evaluations = _split(docs)
    accuracy = [("Accuracy", [ACCURACY_TEXT, accuracy_table(evaluations)])] if evaluations else []
    device = [d for d in profiles if d["kind"] == "device"]
    kinds = f"{len(device)} device, {len(profiles) - len(device)} server"
    if evaluations:
        kinds += f", {len(evaluations)} evaluation"
    overview = [f"{len(docs)} results ({kinds}).", ("notes",), overview_table(profiles)]
    if not profiles:
        return [("Overview", overview[:1])] + accuracy
    return [
        ("Overview", overview),
        ("End-to-end latency", [("figure", "end_to_end"), end_to_end_table(profiles)]),
        ("Latency per stage", [("figure", "stages"), latency_table(profiles),
                               resources_table(profiles)]),
        ("Bytes per image", [("figure", "pareto"), "Pareto front across all results "
                             "(fewer bytes and lower device latency are better):",
                             pareto_table(profiles), bytes_table(profiles),
                             "Input-compression baselines (same images):",
                             baselines_table(profiles)]),
        *accuracy,
        ("Energy per image", [("figure", "energy"), energy_table(profiles)]),
        ("Conditions", ["Device:", device_conditions_table(profiles), "Run and measurement:",
                        run_conditions_table(profiles)]),
    ]


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(docs: Sequence[dict]) -> str:
    out = ["# sc2deploy profiling report", ""]
    for title, blocks in _sections(docs):
        out += [f"## {title}", ""]
        for block in blocks:
            if isinstance(block, Table):
                if not block.rows:
                    out += ["(none)", ""]
                    continue
                out.append("| " + " | ".join(map(_md_cell, block.headers)) + " |")
                out.append("|" + "---|" * len(block.headers))
                out += ["| " + " | ".join(map(_md_cell, r)) + " |" for r in block.rows]
                out.append("")
            elif block == ("notes",):
                out += [f"- **Note:** {n}" for n in _notes(_split(docs)[0])] + [""]
            elif isinstance(block, tuple):
                key = block[1]
                out += [f"![{key}]({PLOTS[key]})", "", f"*{CAPTIONS[key]}*", ""]
            else:
                out += [block, ""]
    return "\n".join(out)


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:2em auto;max-width:1200px;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:2em}
.scroll{overflow-x:auto;margin:.6em 0 1.2em}
table{border-collapse:collapse;font-size:.85em}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:left;vertical-align:top}
th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.partial td{background:#fff4d6}
.note{background:#fff8e1;border-left:4px solid #e0a800;padding:.4em .8em;margin:.4em 0}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85em;color:#555;margin-top:.3em}
"""


def _is_number_cell(text: str) -> bool:
    head = text.split(" ")[0].replace(",", "")
    try:
        float(head)
        return True
    except ValueError:
        return False


def render_html(docs: Sequence[dict], plots: Dict[str, Path]) -> str:
    """The report as one HTML file: inline CSS, plots as base64 data URIs, no external links."""
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           "<title>sc2deploy profiling report</title>", f"<style>{CSS}</style></head><body>",
           "<h1>sc2deploy profiling report</h1>"]
    for title, blocks in _sections(docs):
        out.append(f"<h2>{e(title)}</h2>")
        for block in blocks:
            if isinstance(block, Table):
                if not block.rows:
                    out.append("<p>(none)</p>")
                    continue
                out.append('<div class="scroll"><table><thead><tr>' +
                           "".join(f"<th>{e(h)}</th>" for h in block.headers) +
                           "</tr></thead><tbody>")
                for row, partial in zip(block.rows, block.partial):
                    cells = "".join(
                        f'<td class="num">{e(c)}</td>' if i and _is_number_cell(c)
                        else f"<td>{e(c)}</td>" for i, c in enumerate(row))
                    out.append(f'<tr class="partial">{cells}</tr>' if partial
                               else f"<tr>{cells}</tr>")
                out.append("</tbody></table></div>")
            elif block == ("notes",):
                out += [f'<p class="note"><b>Note:</b> {e(n)}</p>'
                        for n in _notes(_split(docs)[0])]
            elif isinstance(block, tuple):
                key = block[1]
                data = base64.b64encode(Path(plots[key]).read_bytes()).decode("ascii")
                out.append(f'<figure><img alt="{e(key)}" src="data:image/png;base64,{data}">'
                           f"<figcaption>{e(CAPTIONS[key])}</figcaption></figure>")
            else:
                out.append(f"<p>{e(block)}</p>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_report(docs: Sequence[dict], out_dir: Union[str, Path]) -> Path:
    """Write report.md, report.html, results.csv and the PNG plots into ``out_dir``.

    Returns the path of report.html. ``docs`` are results documents (validated again here).
    """
    docs = list(docs)
    if not docs:
        raise ResultsError("nothing to report: expected one or more results documents, got 0")
    for i, doc in enumerate(docs):
        label = doc.get("label") if isinstance(doc, dict) else None
        validate(doc, f"result #{i + 1}" + (f" ({label!r})" if isinstance(label, str) else ""))
    out = ensure_writable(out_dir, "the report folder")
    drawers = {"end_to_end": plot_end_to_end, "stages": plot_stage_latency,
               "energy": plot_energy, "pareto": plot_bytes_latency}
    # Everything is drawn in a staging folder first, then moved in at once: Ctrl-C or a
    # failure leaves an earlier report in out_dir exactly as it was, and no partial file.
    staging = Path(tempfile.mkdtemp(prefix=".report-", dir=out))
    try:
        profiles = _split(docs)[0]  # evaluations: the Accuracy table only (no plots, no CSV)
        plots = {key: drawers[key](profiles, staging / PLOTS[key]) for key in PLOTS} \
            if profiles else {}
        (staging / "report.md").write_text(render_markdown(docs), encoding="utf-8")
        write_csv(profiles, staging / "results.csv")
        (staging / "report.html").write_text(render_html(docs, plots), encoding="utf-8")
        files = sorted(p.name for p in staging.iterdir())
        for name in files:
            make_readable(staging / name)
        swap_in([(staging / name, out / name) for name in files])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out / "report.html"
