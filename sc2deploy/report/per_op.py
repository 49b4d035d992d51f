"""The per-op profile of a ``profile --per-op`` result: a ranked table and a figure.

The table is text (printed by ``profile``); the figure is drawn with the report's matplotlib
settings and written beside the results (``RESULTS.per-op.png``) by :func:`write_figure`.
"""

from pathlib import Path
from typing import List, Optional

from sc2deploy.report.data import COLORS
from sc2deploy.report.figure import new_figure, save_png_atomically, styled

TOP = 10  # nodes in the printed table
FIGURE_TOP = 15  # nodes in the figure


def _label(node: dict) -> str:
    graph = node["graph_node"]
    if graph is None:
        return f"{node['name']} (inserted by the runtime)"
    return graph if graph == node["name"] else f"{graph} (as {node['name']})"


def _times(ratio: Optional[float]) -> str:
    return f"{ratio:.2f}" if ratio is not None else "n/a"


def _ms(value: Optional[float]) -> str:
    return f"{value:.3f} ms" if value is not None else "n/a"


def summary_lines(entry: dict) -> List[str]:
    """The sum of the nodes against the head's measured p50 (and the head timed beside the
    profiled runs, with and without the profiler)."""
    return [f"nodes sum p50 {entry['nodes_sum_ms']['p50']:.3f} ms = {_times(entry['ratio'])} x "
            f"head p50 {entry['head_p50_ms']:.3f} ms (measured loop)",
            f"  = {_times(entry['ratio_unprofiled'])} x head p50 "
            f"{_ms(entry['unprofiled_head_p50_ms'])} unprofiled, run before each profiled run "
            f"(same moments); profiled runs: head p50 {_ms(entry['profiled_head_p50_ms'])}, "
            f"onnxruntime model_run p50 {entry['model_run_p50_ms']:.3f} ms; {entry['runs']} "
            f"profiled runs after {entry['warmup']} warm-up"]


def format_per_op(entry: dict, top: int = TOP) -> List[str]:
    """Lines of the per-op section: why there is none, or the ranked table of the slowest
    nodes (time p50 and mean over the profiled runs; share: the mean over the head's p50, so
    the shares add up to the runs' mean sum)."""
    if not entry["available"]:
        return [entry["reason"]]
    nodes = entry["nodes"]
    first, second = summary_lines(entry)
    lines = [f"per-op profile, {entry['profiler']}: {first}", second,
             f"  {'#':>3} {'op':<16} {'p50 ms':>8} {'mean ms':>8} {'share':>6}  node"]
    for rank, node in enumerate(nodes[:top], 1):
        lines.append(f"  {rank:>3} {node['op_type'][:16]:<16} {node['p50_ms']:8.3f} "
                     f"{node['mean_ms']:8.3f} {node['share_pct']:5.1f}%  {_label(node)}")
    rest = nodes[top:]
    if rest:
        lines.append(f"  ... {len(rest)} more nodes: {sum(n['mean_ms'] for n in rest):.3f} ms "
                     f"mean, {sum(n['share_pct'] for n in rest):.1f}% of the head")
    outside = entry["head_p50_ms"] - entry["nodes_sum_ms"]["p50"]
    if outside >= 0:
        lines.append(f"  outside the nodes: {outside:.3f} ms of the head p50 (session run, "
                     "input/output copies, the runner's checks)")
    else:
        lines.append(f"  the nodes sum exceeds the measured head p50 by {-outside:.3f} ms: the "
                     "profiled runs ran slower than the measured loop (other load, or the "
                     "profiler's own cost)")
    if entry.get("trace"):
        lines.append(f"  raw trace: {entry['trace']} (Chrome trace JSON: chrome://tracing, "
                     "ui.perfetto.dev)")
    return lines


@styled
def plot_per_op(doc: dict, top: int = FIGURE_TOP):
    """The slowest nodes as horizontal bars (mean ms, share of the head p50), the rest and
    the time outside the nodes (head p50 - the nodes' sum p50) as the last bars."""
    entry = doc["per_op"]
    nodes = entry["nodes"]
    bars = [(n["graph_node"] or f"{n['name']} (inserted)", n["mean_ms"], COLORS["device"])
            for n in nodes[:top]]
    if nodes[top:]:
        bars.append((f"{len(nodes) - top} more nodes", sum(n["mean_ms"] for n in nodes[top:]),
                     "#999999"))
    outside = entry["head_p50_ms"] - entry["nodes_sum_ms"]["p50"]
    bars.append(("outside the nodes (head p50 - nodes sum p50)", max(outside, 0.0), "#CCCCCC"))
    fig = new_figure(0.8 + 0.2 * len(bars))
    ax = fig.subplots()
    for y, (text, ms, color) in enumerate(bars):
        ax.barh(y, ms, color=color, height=0.7)
        share = 100.0 * ms / entry["head_p50_ms"] if entry["head_p50_ms"] > 0 else 0.0
        ax.annotate(f"{ms:.3f} ms ({share:.1f}%)", (ms, y), xytext=(3, 0),
                    textcoords="offset points", va="center", fontsize=6.5)
    ax.set_yticks(range(len(bars)), [b[0] for b in bars], fontsize=6.5)
    ax.invert_yaxis()
    ax.margins(x=0.2)
    ax.set_xlabel("time per run, mean over the profiled runs (ms); share of the head p50")
    ax.grid(alpha=0.3, axis="x")
    fig.suptitle(f"{doc['label']}: per-op time of the head ({entry['runs']} runs; nodes sum = "
                 f"{_times(entry['ratio'])} x head p50 {entry['head_p50_ms']:.2f} ms)", x=0.01,
                 ha="left")
    return fig


def figure_path(results: Path) -> Path:
    """Where the per-op figure of the results file ``results`` goes."""
    results = Path(results)
    return results.with_name(f"{results.stem}.per-op.png")


def write_figure(doc: dict, results: Path) -> Optional[Path]:
    """Draw the per-op figure of ``doc`` beside its results file ``results`` (written through
    a temporary file); None when ``doc`` has no per-op profile."""
    entry = doc.get("per_op")
    if not entry or not entry["available"]:
        return None
    return save_png_atomically(plot_per_op(doc), figure_path(results))


def figure_beside(results: Path) -> Optional[str]:
    """``profile --per-op``: draw the figure of the results file ``results`` beside it; the
    line to print (where it went, or why it was not drawn), None without a per-op profile
    (the results said why)."""
    from sc2deploy.errors import UsageError
    from sc2deploy.results.schema import load_results

    doc = load_results([results])[0]
    try:
        path = write_figure(doc, results)
    except UsageError as exc:  # no matplotlib (a device): the table and the trace are kept
        return f"per-op figure: not drawn ({exc})"
    return f"per-op figure: {path}" if path else None
