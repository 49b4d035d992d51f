"""Rate–accuracy and rate–agreement figures from ``sc2deploy evaluate`` documents.

x = mean bytes per image (log axis), y = top-1 accuracy (or top-1 agreement with the fp32
pipeline) in %, vertical bars = 95 % Wilson intervals. Each target of each evaluation
document is a point; several documents of one model (a sweep over beta, or checkpoints) join
each target's points into a curve ordered by bytes. JPEG/WebP baselines (``baselines`` of
the documents: the teacher on decoded images) are curves over their quality.
"""

from typing import Dict, List, Sequence, Tuple

from sc2deploy.report.data import PALETTE, names
from sc2deploy.report.figure import log_scale, new_figure, styled

BASELINE_STYLE = {"jpeg": ("s", "#555555", "JPEG"), "webp": ("^", "#999999", "WebP")}
MARKERS = ("o", "D", "v", "P", "X", "<", ">", "h")


def target_series(evaluations: Sequence[dict]) -> Dict[Tuple[str, str], List[Tuple[str, dict]]]:
    """(model, target): [(document name, target row)], ordered by mean bytes."""
    series: Dict[Tuple[str, str], List[Tuple[str, dict]]] = {}
    for doc, name in zip(evaluations, names(evaluations)):
        for row in doc["targets"]:
            series.setdefault((doc["bundle"]["model"], row["target"]), []).append((name, row))
    return {k: sorted(v, key=lambda item: item[1]["bytes"]["mean"]) for k, v in series.items()}


def baseline_series(evaluations: Sequence[dict]) -> Dict[Tuple[str, str], List[dict]]:
    """(codec, model): baseline rows, one per quality (the first seen), ordered by quality."""
    series: Dict[Tuple[str, str], Dict[int, dict]] = {}
    for doc in evaluations:
        for row in doc.get("baselines") or []:
            key = (row["codec"], row.get("model", "teacher"))
            series.setdefault(key, {}).setdefault(row["quality"], row)
    return {k: [v[q] for q in sorted(v)] for k, v in series.items()}


DODGE = 1.02  # horizontal step (a factor, log axis) between the targets of one model


def dodge(model: str, target: str, series) -> float:
    """The factor that moves ``target``'s points off those of the model's other targets
    (identical results would otherwise be drawn on top of each other)."""
    targets = [t for m, t in series if m == model]
    if len(targets) < 2:
        return 1.0
    return DODGE ** (targets.index(target) - (len(targets) - 1) / 2)


def _errorbar(ax, xs, entries, **style):
    ys = [e["pct"] for e in entries]
    err = [[max(y - e["ci95"][0], 0) for y, e in zip(ys, entries)],
           [max(e["ci95"][1] - y, 0) for y, e in zip(ys, entries)]]
    return ax.errorbar(xs, ys, yerr=err, capsize=2.5, elinewidth=0.8, markersize=5, **style)


def _draw(evaluations: Sequence[dict], key: str, ylabel: str, title: str, with_baselines: bool):
    fig = new_figure(4.2)
    ax = fig.add_subplot()
    xs_all = []
    if with_baselines:
        for (codec, model), rows in baseline_series(evaluations).items():
            marker, color, text = BASELINE_STYLE.get(codec, ("P", "#777777", codec))
            xs = [r["bytes"]["mean"] for r in rows]
            xs_all += xs
            _errorbar(ax, xs, [r[key] for r in rows], marker=marker, color=color,
                      linestyle="-", linewidth=1, label=f"{text} ({model}), quality "
                      f"{rows[0]['quality']}–{rows[-1]['quality']}")
            for x, r in zip(xs, rows):
                ax.annotate(f"q{r['quality']}", (x, r[key]["pct"]), xytext=(3, -9),
                            textcoords="offset points", fontsize=6.5, color=color)
    series = target_series(evaluations)
    models = sorted({m for m, _ in series})
    named = set()  # each model's evaluations are named once, on its first target's curve
    dodged = 1.0  # the largest factor used
    for i, ((model, target), items) in enumerate(series.items()):
        xs = [row["bytes"]["mean"] for _, row in items]
        xs_all += xs
        factor = dodge(model, target, series)
        dodged = max(dodged, factor, 1 / factor)
        xs = [x * factor for x in xs]
        marker = MARKERS[models.index(model) % len(MARKERS)]
        curve = len(items) > 1
        _errorbar(ax, xs, [row[key] for _, row in items], marker=marker,
                  color=PALETTE[i % len(PALETTE)], linestyle="-" if curve else "none",
                  linewidth=1.2, label=f"{model} / {target}"
                  + (f" ({len(items)} evaluations)" if curve else ""))
        if curve and model not in named:
            named.add(model)
            for x, (name, row) in zip(xs, items):
                ax.annotate(name, (x, row[key]["pct"]), xytext=(4, 4),
                            textcoords="offset points", fontsize=6.5)
    if xs_all and min(xs_all) > 0:
        log_scale(ax, "x", "dense" if max(xs_all) / min(xs_all) < 10 else "125")
        ax.set_xlim(min(xs_all) / 1.3, max(xs_all) * 1.3)
    ax.set_xlabel("bytes per image, mean (log scale)" + (
        f"; a model's targets offset by up to ±{100 * (dodged - 1):.0f} % so none hides "
        "another" if dodged > 1 else ""))
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left")
    ax.grid(alpha=0.3, which="both")
    fig.legend(loc="outside lower center", ncol=2, frameon=False)
    return fig


@styled
def plot_rate_accuracy(evaluations: Sequence[dict]):
    return _draw(evaluations, "top1", "top-1 accuracy (%), 95 % Wilson CI",
                 "Rate–accuracy: bytes per image vs top-1 (upper left is better)", True)


@styled
def plot_rate_agreement(evaluations: Sequence[dict]):
    return _draw(evaluations, "top1_agreement", "top-1 = fp32 pipeline's (%), 95 % Wilson CI",
                 "Rate–agreement: bytes per image vs agreement with the fp32 pipeline", False)
