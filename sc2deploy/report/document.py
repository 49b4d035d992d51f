"""Reports from results: HTML, Markdown, figures (PNG/PDF/SVG), tables (LaTeX/CSV).

::

    results.json ... ─ validate ─┬─ tables ─┬─ report.md    (figures by relative path)
                                 │          ├─ report.html  (figures as data: URIs, inline CSS)
                                 │          └─ tables/NAME.tex, tables/NAME.csv (booktabs)
                                 ├─ results.csv              (one row per profiling result)
                                 └─ figures (matplotlib, Agg) ─ NAME.png, NAME.pdf, NAME.svg

``formats`` chooses what is written (default: everything, :data:`FORMATS`). Partial
(interrupted) results are included and flagged wherever they appear; modeled numbers are
labeled "modeled" in every table and hatched in every figure ("modeled, host-timed on CPU"
when the time was measured on a machine other than the profile's device) and never shown
with a confidence interval. Evaluation documents (``sc2deploy evaluate``) give the Accuracy
table and the rate–accuracy figures, and accuracy to the Pareto front.
"""

import base64
import html
import shutil
import tempfile
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

from sc2deploy.atomic import (deferred_signals, ensure_writable, make_readable, replace_dir,
                              swap_in)
from sc2deploy.errors import ResultsError, UsageError
from sc2deploy.report.adaptive import TEXT as ADAPTIVE_TEXT, adaptive_docs, adaptive_table
from sc2deploy.report.adaptive_plot import plot_adaptive
from sc2deploy.report.captions import caption
from sc2deploy.report.data import (FIGURES, NO_ENERGY, PARTIAL, PLOTS, device_key,
                                   end_to_end_bars, energy_kind_of, host_timed_on,
                                   incomplete_tag, names, reached_nothing)
from sc2deploy.report.distributions import plot_latency_cdf, plot_stage_latency
from sc2deploy.report.figure import FIGURE_FORMATS, save
from sc2deploy.report.mixing import refuse_duplicates
from sc2deploy.report.pareto import candidates, front, left_out
from sc2deploy.report.plots import plot_bytes_latency, plot_end_to_end, plot_energy
from sc2deploy.report.rate import plot_rate_accuracy, plot_rate_agreement
from sc2deploy.report.worth import RULE, compare, comparison_rows, smallest_text
from sc2deploy.report.worth_plot import plot_worth
from sc2deploy.report.table_files import is_number_cell, to_csv, to_latex
from sc2deploy.report.tables import (Table, accuracy_table, baselines_table, bytes_table,
                                     device_blocks, end_to_end_table, energy_table,
                                     latency_table, overview_table, pareto_table,
                                     resources_table, run_conditions_table, write_csv)
from sc2deploy.results.schema import validate

FORMATS = ("html", "md", "png", "pdf", "svg", "latex", "csv")


def parse_formats(text: str) -> Tuple[str, ...]:
    """``"html,pdf"`` → ("html", "pdf"); "all" = every format. Unknown names are refused."""
    chosen = [f.strip().lower() for f in text.split(",") if f.strip()]
    if chosen == ["all"]:
        return FORMATS
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise UsageError(f"--format {text!r}: expected a comma-separated list of "
                         f"{', '.join(FORMATS)} (or all), got "
                         f"{', '.join(map(repr, unknown)) or 'nothing'}")
    return tuple(f for f in FORMATS if f in chosen)


def _notes(docs: Sequence[dict]) -> List[str]:
    all_names = names(docs)
    notes = []
    partial = [n for d, n in zip(docs, all_names)
               if not d["complete"] and incomplete_tag(d) == PARTIAL]
    if partial:
        notes.append(f"{PARTIAL}: {', '.join(partial)}. These runs were stopped early; their "
                     "numbers cover only the images measured before the interruption.")
    unanswered = [n for d, n in zip(docs, all_names)
                  if not d["complete"] and incomplete_tag(d) != PARTIAL]
    if unanswered:
        notes.append(f"Streams with images refused or never answered: {', '.join(unanswered)}"
                     ". Their times cover the answered images only.")
    nothing = [n for d, n in zip(docs, all_names) if reached_nothing(d)]
    if nothing:
        notes.append(f"Not drawn: {', '.join(nothing)}: no image was answered (server down "
                     "or every image refused), so they measured no end-to-end time.")
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
    """(profiling results: device, server and stream, evaluations: ``sc2deploy evaluate``);
    replays (modeled) are neither: they are drawn in the adaptive section only."""
    return ([d for d in docs if d["kind"] not in ("evaluation", "replay")],
            [d for d in docs if d["kind"] == "evaluation"])


def figure_keys(docs: Sequence[dict]) -> List[str]:
    """The figures these results can fill (no empty figure is drawn)."""
    profiles, evaluations = _split(docs)
    kinds = {d["kind"] for d in profiles if not reached_nothing(d)}
    keys = []
    if kinds & {"device", "stream"}:
        keys.append("end_to_end")
    if profiles:
        keys.append("stages")
        if any(d.get("samples") for d in profiles):
            keys.append("cdf")
    if "device" in kinds:
        keys += ["pareto", "energy"]
    if evaluations:
        keys += ["rate_accuracy", "rate_agreement"]
        if compare(evaluations) is not None:
            keys.append("worth")
    if adaptive_docs(docs):
        keys.append("adaptive")
    return keys


def _draw(key: str, profiles: Sequence[dict], evaluations: Sequence[dict],
          docs: Sequence[dict] = ()):
    drawers = {"end_to_end": lambda: plot_end_to_end(profiles),
               "stages": lambda: plot_stage_latency(profiles),
               "cdf": lambda: plot_latency_cdf(profiles),
               "pareto": lambda: plot_bytes_latency(profiles, evaluations),
               "energy": lambda: plot_energy(profiles),
               "rate_accuracy": lambda: plot_rate_accuracy(evaluations),
               "rate_agreement": lambda: plot_rate_agreement(evaluations),
               "worth": lambda: plot_worth(evaluations),
               "adaptive": lambda: plot_adaptive(docs)}
    return drawers[key]()


ACCURACY_TEXT = ("Top-1/top-5 accuracy of each target's whole pipeline (head through its own "
                 "runtime, the real container, the tail) on the labeled images, with 95 % "
                 "Wilson intervals; mean bytes of the containers; how often its top-1 equals "
                 "the fp32 pipeline's (head.onnx). JPEG/WebP rows: the head's input compressed "
                 "at that quality, decoded and classified by the teacher.")


def _pareto_text(profiles: Sequence[dict], evaluations: Sequence[dict]) -> str:
    device = [d for d, _ in candidates(profiles)]
    if not device:
        return "No Pareto front: no device result ran on its target's own runtime."
    used = front(device, evaluations).objectives
    return (f"Pareto front over {', '.join(used)} (accuracy only when every device result "
            "has an evaluation of its bundle and target; energy only when every one has "
            "energy). Ties inside the measurement noise are kept as ties (the rule is in the "
            "figure's caption): \"tied with\" names the results no objective separates.")


def _worth_section(evaluations: Sequence[dict]) -> List[Tuple[str, List[object]]]:
    """Worth deploying: each student curve vs the best of JPEG/WebP at equal accuracy."""
    doc = compare(evaluations) if evaluations else None
    if doc is None:
        return []
    table = Table(["student", "quantity", "link", "student needs", "best baseline needs",
                   "student / baseline", "verdict"], name="worth_deploying")
    for cells in comparison_rows(doc):
        table.add(cells)
    text = (f"At top-1 >= {doc['floor']:.1f} %, the least each pipeline needs ({RULE}). Times: "
            "medians timed by evaluate on the machine that ran it, plus the link model's "
            f"delay; energy modeled ({doc['device_profile']} profile x device time, TX power x "
            "airtime).")
    return [("Worth deploying", [text, ("figure", "worth"), table,
                                 *(smallest_text(e) + "." for e in doc["smallest"])])]


def _sections(docs: Sequence[dict]) -> List[Tuple[str, List[object]]]:
    """(title, blocks) where a block is a str paragraph, a Table or ("figure", key)."""
    profiles, evaluations = _split(docs)
    keys = figure_keys(docs)

    def fig(*wanted):
        return [("figure", k) for k in wanted if k in keys]

    accuracy = ([("Accuracy", [ACCURACY_TEXT, *fig("rate_accuracy", "rate_agreement"),
                               accuracy_table(evaluations)])] if evaluations else [])
    accuracy += _worth_section(evaluations)
    if "adaptive" in keys:
        accuracy.append(("Adaptive ladder", [ADAPTIVE_TEXT, ("figure", "adaptive"),
                                             adaptive_table(docs)]))
    counts = {k: sum(d["kind"] == k for d in docs) for k in ("device", "server", "stream",
                                                            "evaluation", "replay")}
    kinds = ", ".join(f"{n} {k}" for k, n in counts.items() if n or k in ("device", "server"))
    overview = [f"{len(docs)} results ({kinds}).", ("notes",), overview_table(profiles)]
    if not profiles:
        return [("Overview", overview[:1])] + accuracy
    device = [d for d in profiles if d["kind"] == "device"]
    conditions: List[object] = ["One block per device: what its runs share (values that "
                                "differed between runs are joined by \";\")."]
    for name, block in device_blocks(profiles):
        conditions += [f"Device: {name}", block]
    conditions += ["Runs:", run_conditions_table(profiles)]
    bytes_blocks = ([*fig("pareto"), _pareto_text(profiles, evaluations),
                     *filter(None, [left_out(profiles)]), pareto_table(profiles, evaluations),
                     bytes_table(profiles),
                     "Input-compression baselines (same images):", baselines_table(profiles)]
                    if device else [])
    return [
        ("Overview", overview),
        *([("End-to-end latency", [*fig("end_to_end"), end_to_end_table(profiles)])]
          if "end_to_end" in keys else []),
        ("Latency per stage", [*fig("stages", "cdf"), latency_table(profiles),
                               resources_table(profiles)]),
        *([("Bytes per image", bytes_blocks)] if device else []),
        *accuracy,
        *([("Energy per image", [*fig("energy"), energy_table(profiles)])] if device else []),
        ("Conditions", conditions),
    ]


def _tables(sections) -> List[Table]:
    return [b for _, blocks in sections for b in blocks if isinstance(b, Table)]


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(docs: Sequence[dict]) -> str:
    profiles, evaluations = _split(docs)
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
                out += [f"- **Note:** {n}" for n in _notes(profiles)] + [""]
            elif isinstance(block, tuple):
                key = block[1]
                out += [f"![{key}]({PLOTS[key]})", "",
                        f"*{caption(key, profiles, evaluations)}*", ""]
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


def render_html(docs: Sequence[dict], pngs: Dict[str, Path]) -> str:
    """The report as one HTML file: inline CSS, figures as base64 data URIs, no external
    links."""
    profiles, evaluations = _split(docs)
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
                        f'<td class="num">{e(c)}</td>' if i and is_number_cell(c)
                        else f"<td>{e(c)}</td>" for i, c in enumerate(row))
                    out.append(f'<tr class="partial">{cells}</tr>' if partial
                               else f"<tr>{cells}</tr>")
                out.append("</tbody></table></div>")
            elif block == ("notes",):
                out += [f'<p class="note"><b>Note:</b> {e(n)}</p>' for n in _notes(profiles)]
            elif isinstance(block, tuple):
                key = block[1]
                data = base64.b64encode(Path(pngs[key]).read_bytes()).decode("ascii")
                out.append(f'<figure><img alt="{e(key)}" src="data:image/png;base64,{data}">'
                           f"<figcaption>{e(caption(key, profiles, evaluations))}"
                           "</figcaption></figure>")
            else:
                out.append(f"<p>{e(block)}</p>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_report(docs: Sequence[dict], out_dir: Union[str, Path],
                 formats: Sequence[str] = FORMATS) -> Path:
    """Write the report in ``formats`` (:data:`FORMATS`) into ``out_dir``.

    Returns the path of report.html (of ``out_dir`` without "html"). ``docs`` are results
    documents (validated again here). html embeds its figures; md links the PNG files.
    """
    docs = list(docs)
    if not docs:
        raise ResultsError("nothing to report: expected one or more results documents, got 0")
    for i, doc in enumerate(docs):
        label = doc.get("label") if isinstance(doc, dict) else None
        validate(doc, f"result #{i + 1}" + (f" ({label!r})" if isinstance(label, str) else ""))
    refuse_duplicates(docs)
    formats = set(formats)
    out = ensure_writable(out_dir, "the report folder")
    profiles, evaluations = _split(docs)
    keep = [f for f in FIGURE_FORMATS if f in formats or (f == "png" and "md" in formats)]
    draw = keep + (["png"] if "html" in formats and "png" not in keep else [])
    # Everything is drawn in a staging folder first, then moved in at once: Ctrl-C or a
    # failure leaves an earlier report in out_dir exactly as it was, and no partial file.
    staging = Path(tempfile.mkdtemp(prefix=".report-", dir=out))
    try:
        pngs = {}
        for key in figure_keys(docs) if draw else []:
            saved = save(_draw(key, profiles, evaluations, docs), staging / FIGURES[key], draw)
            pngs[key] = saved.get("png")
        if "md" in formats:
            (staging / "report.md").write_text(render_markdown(docs), encoding="utf-8")
        if "csv" in formats and profiles:
            write_csv(profiles, staging / "results.csv")
        if "html" in formats:
            (staging / "report.html").write_text(render_html(docs, pngs), encoding="utf-8")
            if "png" not in keep:
                for path in pngs.values():
                    path.unlink()
        if formats & {"latex", "csv"}:
            _write_tables(_tables(_sections(docs)), staging / "tables", formats)
        files = sorted(p.name for p in staging.iterdir() if p.is_file())
        for name in files:
            make_readable(staging / name)
        with deferred_signals():  # the files and tables/ together, or neither
            swap_in([(staging / name, out / name) for name in files])
            if (staging / "tables").is_dir():
                replace_dir(staging / "tables", out / "tables")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out / "report.html" if "html" in formats else out


def _write_tables(tables: Sequence[Table], folder: Path, formats) -> None:
    """tables/NAME.tex (booktabs) and tables/NAME.csv of every non-empty table."""
    folder.mkdir()
    make_readable(folder, 0o755)
    for table in tables:
        if not table.rows:
            continue
        if "latex" in formats:
            (folder / f"{table.name}.tex").write_text(to_latex(table), encoding="utf-8")
        if "csv" in formats:
            (folder / f"{table.name}.csv").write_text(to_csv(table), encoding="utf-8")
    for path in folder.iterdir():
        make_readable(path)
