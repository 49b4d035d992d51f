"""The per-layer sensitivity of ``sc2deploy explain``: a ranked table and a figure.

The table is text (printed by ``explain``); the figure is drawn with the report's matplotlib
settings and written beside the results (``RESULTS.png``) by :func:`write_figure`.
"""

from pathlib import Path
from typing import List, Optional

from sc2deploy.report.figure import new_figure, save_png_atomically, styled

TOP = 20  # nodes in the printed table


def _db(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _rate(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:+.2f}"


def _task(metrics: Optional[dict]) -> str:
    task = metrics and metrics.get("task")
    if not task:
        return f"{'n/a':>7} {'n/a':>8}"
    return f"{task['top1_agree']:>3}/{task['images']:<3} {task['kl_mean']:>8.1e}"


def _cells(metrics: Optional[dict], with_tail: bool) -> str:
    width = 31 + (17 if with_tail else 0)
    if metrics is None:
        return f"{'(the quantizer left every node float)':<{width}}"
    if metrics.get("non_finite"):
        return f"{'NaN/inf symbols, or the runtime refused':<{width}}"
    return (f"{_db(metrics.get('output_sqnr_db')):>6} {metrics['symbols_changed_pct']:>8.3f} "
            f"{_rate(metrics['rate_change_pct']):>7}" + (f" {_task(metrics)}" if with_tail else ""))


def format_sensitivity(doc: dict, top: int = TOP) -> str:
    """The ranked table: each node quantized alone (the rest fp32) and kept fp32 alone (the
    rest int8), against the all-int8 build; node names (as in the graph) last."""
    with_tail = doc["has_tail"]
    q, images = doc["quantizer"], doc["images"]
    cols = f"{'out dB':>6} {'chg %':>8} {'rate Δ%':>7}" + (
        f" {'top-1':>7} {'KL':>8}" if with_tail else "")
    lines = [f"per-layer sensitivity of {doc['target']} ({doc['runtime']}; activations "
             f"{q['activations']}, weights int8 per channel, {q['calibration']} ranges from "
             f"{images['calibration']} images); measured on {images['source']}; SQNR on "
             f"{doc['sqnr']['images']} images",
             f"all int8: {_cells(doc['all_int8'], with_tail).strip()}",
             f"{'':>3} {'':<10} {'':>7} {'int8 alone, rest fp32':<{len(cols)}}  "
             "fp32 alone, rest int8",
             f"{'#':>3} {'op':<10} {'node dB':>7} {cols}  {cols}  node"]
    for row in doc["nodes"][:top]:
        alone, kept = row["int8_alone"], row["fp32_alone"]
        lines.append(f"{row['rank']:>3} {row['op_type'][:10]:<10} "
                     f"{_db(alone.get('node_sqnr_db')):>7} {_cells(alone, with_tail)}  "
                     f"{_cells(kept, with_tail)}  {row['name']}")
    rest = doc["nodes"][top:]
    if rest:
        lines.append(f"... {len(rest)} more nodes in the results file")
    same = [r for r in doc["nodes"] if r["fp32_alone"] is not None and
            r["fp32_alone"]["symbols_changed_pct"] == doc["all_int8"]["symbols_changed_pct"]]
    lines.append(f"node dB: SQNR of the node's output, quantized alone; out dB: SQNR of "
                 f"{doc['sqnr']['output_tensor']} (the values rounded to symbols); chg: symbols "
                 "changed; rate: bytes under the bundle's prior; top-1, KL: the tail's "
                 "predictions against the fp32 pipeline's")
    if same:
        lines.append(f"{len(same)} node(s) kept fp32 alone change nothing against all int8: "
                     "their inputs and outputs stay quantized by their neighbours")
    lines.append(f"ranked by {doc['rank_by']}")
    return "\n".join(lines)


def _short(name: str, width: int = 40) -> str:
    """A node name cut to its last ``width`` characters for the figure (the table has it
    whole)."""
    return name if len(name) <= width else "…" + name[-(width - 1):]


def _metric(metrics: Optional[dict], with_tail: bool) -> float:
    """What the figure draws: symbols changed % (finer than top-1 on a few images)."""
    return 0.0 if metrics is None else metrics["symbols_changed_pct"]


@styled
def plot_sensitivity(doc: dict):
    """Two panels of horizontal bars, nodes in rank order: the harm of quantizing each node
    alone, and what is left when it alone stays fp32 (the all-int8 build as a line)."""
    with_tail = doc["has_tail"]
    rows = doc["nodes"]
    what = "symbols changed (%)"
    fig = new_figure(1.2 + 0.22 * len(rows))
    left, right = fig.subplots(1, 2, sharey=True)
    labels = [f"{r['rank']}. {_short(r['name'])} ({r['op_type']})" for r in rows]
    for ax, key, title, color in ((left, "int8_alone", "int8 alone, the rest fp32", "#B22222"),
                                  (right, "fp32_alone", "fp32 alone, the rest int8", "#1F77B4")):
        values = [_metric(r[key], with_tail) for r in rows]
        ax.barh(range(len(rows)), values, color=color, height=0.7)
        for y, (v, r) in enumerate(zip(values, rows)):
            task = (r[key] or {}).get("task") if with_tail else None
            text = f"{v:.2f}" + (f" (top-1 {task['top1_agree']}/{task['images']})" if task
                                 else "")
            ax.annotate(text, (v, y), xytext=(2, 0), textcoords="offset points", va="center",
                        fontsize=6.5)
        ax.set_title(title)
        ax.set_xlabel(what)
        ax.grid(alpha=0.3, axis="x")
        ax.margins(x=0.25)
    base = _metric(doc["all_int8"], with_tail)
    right.axvline(base, color="#555555", linestyle="--", linewidth=0.8)
    right.annotate(f"all int8: {base:.2f}", (base, len(rows) - 0.4), fontsize=6.5, ha="left",
                   va="top")
    left.set_yticks(range(len(rows)), labels, fontsize=6.5)
    left.invert_yaxis()
    fig.suptitle(f"{doc['bundle']['model'] or doc['bundle']['path']}: per-layer sensitivity of "
                 f"{doc['target']} (activations {doc['quantizer']['activations']}, "
                 f"{doc['images']['evaluation']} images)", x=0.01, ha="left")
    return fig


def figure_path(results: Path) -> Path:
    """Where the figure of the results file ``results`` goes."""
    return Path(results).with_suffix(".png")


def write_figure(doc: dict, results: Path) -> Path:
    """Draw the figure of ``doc`` beside its results file (through a temporary file)."""
    return save_png_atomically(plot_sensitivity(doc), figure_path(results))


def summary_lines(doc: dict, results: Path, figure: Optional[Path]) -> List[str]:
    """What to read next: where the results and the figure went."""
    lines = [f"results written: {results}"]
    if figure is not None:
        lines.append(f"figure: {figure}")
    with_tail = doc["has_tail"]
    kept = [r for r in doc["nodes"] if r["fp32_alone"] is not None]
    if kept and doc["target"] == "onnx-int8":  # tflite-int8's --keep-float takes layer indices
        best = min(kept, key=lambda r: _metric(r["fp32_alone"], with_tail))
        if _metric(best["fp32_alone"], with_tail) < _metric(doc["all_int8"], with_tail):
            flag = ("" if doc["quantizer"]["activations"] == "int8"
                    else f" --activations {doc['quantizer']['activations']}")
            lines.append(f"next: sc2deploy build {doc['bundle']['path']} --target "
                         f"{doc['target']}{flag} --keep-float '{best['name']}'  (the node whose "
                         "float copy recovers most)")
    return lines
