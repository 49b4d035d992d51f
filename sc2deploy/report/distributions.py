"""Latency distributions: per-stage box plots and CDFs, from the raw samples when stored.

Box = quartiles (thick line: median), whiskers = the farthest samples within 1.5 IQR of the
box (Tukey), dots = samples beyond. Results without samples (schema <= 2) are drawn from
their summaries instead, hollow and dashed: box p50..p90, whiskers min..p99 (no quartiles
are stored), and they have no CDF.
"""

from typing import List, Sequence, Tuple

import numpy as np

from sc2deploy.report.data import PALETTE, all_stages, has_stage, names, samples_of
from sc2deploy.report.figure import (flag_partial_ticks, log_scale, new_figure, styled,
                                     wants_log)

WHISKER_IQR = 1.5


def tukey(times: np.ndarray) -> dict:
    """Quartiles, whiskers (farthest samples within 1.5 IQR of the box) and the outliers."""
    q1, q2, q3 = np.percentile(times, [25, 50, 75])
    reach = WHISKER_IQR * (q3 - q1)
    inside = times[(times >= q1 - reach) & (times <= q3 + reach)]
    return {"q1": float(q1), "median": float(q2), "q3": float(q3), "low": float(inside.min()),
            "high": float(inside.max()), "mean": float(times.mean()),
            "outliers": times[(times < q1 - reach) | (times > q3 + reach)]}


def _box(ax, y: float, color: str, q1, median, q3, low, high, mean, outliers=(),
         summary=False) -> None:
    from matplotlib.patches import Rectangle

    h = 0.56
    style = "--" if summary else "-"
    ax.add_patch(Rectangle((q1, y - h / 2), max(q3 - q1, 0), h, linestyle=style,
                           facecolor="white" if summary else color, alpha=1 if summary else 0.5,
                           edgecolor=color, linewidth=1))
    for a, b in ((low, q1), (q3, high)):
        ax.plot([a, b], [y, y], color="#333333", linewidth=0.9, linestyle=style)
    for x in (low, high):
        ax.plot([x, x], [y - h / 4, y + h / 4], color="#333333", linewidth=0.9)
    ax.plot([median, median], [y - h / 2, y + h / 2], color="black", linewidth=2)
    ax.plot([mean], [y], marker="D", markersize=3.5, color="white", markeredgecolor="black",
            linestyle="none")
    if len(outliers):
        ax.plot(outliers, np.full(len(outliers), y), marker="o", markersize=2,
                linestyle="none", color=color, alpha=0.6)


def _rows(docs: Sequence[dict], stage: str) -> List[Tuple[str, dict, bool]]:
    return [(n, d, not d["complete"]) for d, n in zip(docs, names(docs)) if has_stage(d, stage)]


@styled
def plot_stage_latency(docs: Sequence[dict]):
    """One panel per stage the results have, one box per result that has that stage."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    stages = all_stages(docs)
    rows = {s: _rows(docs, s) for s in stages}
    heights = [0.75 + 0.24 * len(rows[s]) for s in stages]
    fig = new_figure(sum(heights) + 0.7)
    axes = fig.subplots(len(stages), 1, height_ratios=heights, squeeze=False)[:, 0]
    summaries = False
    for ax, stage in zip(axes, stages):
        color = PALETTE[3] if stage == "total" else PALETTE[0]
        values = []
        for i, (_, doc, _) in enumerate(rows[stage]):
            s = doc["latency_ms"][stage]
            times = samples_of(doc, stage)
            if s["n"] == 0:
                ax.text(0.01, i, "no samples", va="center", color="gray",
                        transform=ax.get_yaxis_transform())
            elif times is not None:
                t = tukey(times)
                _box(ax, i, color, t["q1"], t["median"], t["q3"], t["low"], t["high"],
                     t["mean"], t["outliers"])
                values += [float(times.min()), float(times.max())]
            else:
                summaries = True
                _box(ax, i, color, s["p50"], s["p50"], s["p90"], s["min"], s["p99"], s["mean"],
                     summary=True)
                values += [s["min"], s["p99"]]
        log = wants_log(values, 30)
        if log:
            log_scale(ax, "x")
        elif values:
            ax.set_xlim(0, max(values) * 1.05 or 1.0)
        ax.set_yticks(range(len(rows[stage])), [n for n, _, _ in rows[stage]])
        flag_partial_ticks(ax, [p for _, _, p in rows[stage]])
        ax.set_ylim(len(rows[stage]) - 0.5, -0.5)
        ax.set_title(f"stage: {stage}", loc="left")
        ax.set_xlabel(f"latency per image (ms{', log scale' if log else ''})")
        ax.grid(axis="x", alpha=0.3, which="both")
    handles = [Patch(facecolor=PALETTE[0], alpha=0.5, edgecolor=PALETTE[0],
                     label="box: quartiles (samples)"),
               Line2D([], [], color="black", linewidth=2, label="median"),
               Line2D([], [], color="#333333", label="whiskers: 1.5 IQR"),
               Line2D([], [], marker="o", markersize=3, color=PALETTE[0], linestyle="none",
                      label="beyond the whiskers"),
               Line2D([], [], marker="D", color="white", markeredgecolor="black",
                      linestyle="none", label="mean")]
    if summaries:
        handles.append(Patch(facecolor="white", edgecolor=PALETTE[0], linestyle="--",
                             label="no samples: p50–p90, min–p99"))
    fig.legend(handles=handles, loc="outside lower center", ncol=3, frameon=False)
    return fig


def cdf_points(times: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(sorted times, fraction of images at or below each), for a step plot."""
    x = np.sort(np.asarray(times, dtype=np.float64))
    return x, np.arange(1, x.size + 1) / x.size


def cdf_results(docs: Sequence[dict]) -> Tuple[List[Tuple[str, dict]], List[str]]:
    """(name, doc) of the results with total samples, and the names of those without."""
    have, missing = [], []
    for doc, name in zip(docs, names(docs)):
        (have if samples_of(doc, "total") is not None else missing).append((name, doc))
    return have, [n for n, _ in missing]


@styled
def plot_latency_cdf(docs: Sequence[dict]):
    """Empirical CDF of the total per-image latency of each result with samples."""
    have, missing = cdf_results(docs)
    fig = new_figure(3.6)
    ax = fig.add_subplot()
    styles = ("-", "--", "-.", ":")
    values = []
    for i, (name, doc) in enumerate(have):
        x, y = cdf_points(samples_of(doc, "total"))
        values += [float(x[0]), float(x[-1])]
        ax.step(x, y, where="post", color=PALETTE[i % len(PALETTE)],
                linestyle=styles[(i // len(PALETTE)) % len(styles)], linewidth=1.2,
                label=f"{name} ({doc['kind']}, n = {x.size})")
    log = wants_log(values, 20)
    if log:
        log_scale(ax, "x")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"total latency per image (ms{', log scale' if log else ''})")
    ax.set_ylabel("fraction of images ≤ latency")
    ax.set_title("Latency CDF (raw per-image samples)", loc="left")
    ax.grid(alpha=0.3, which="both")
    if not have:
        ax.text(0.5, 0.5, "no results with raw samples (schema version ≤ 2)",
                transform=ax.transAxes, ha="center")
    if missing:
        ax.text(0.99, 0.03, "no samples (not drawn): " + ", ".join(missing),
                transform=ax.transAxes, ha="right", va="bottom", color="gray", wrap=True)
    if have:
        fig.legend(loc="outside lower center", ncol=2, frameon=False)
    return fig
