"""The worth-deploying figure: at equal top-1, each student curve vs the best baseline."""

from typing import Sequence

from sc2deploy.report.data import COLORS
from sc2deploy.report.figure import new_figure, styled
from sc2deploy.report.worth import QUANTITIES, compare, value_text


@styled
def plot_worth(evaluations: Sequence[dict]):
    """One panel per quantity and link (linear axis): each student curve, then the best
    baseline."""
    doc = compare(evaluations)
    labels = dict(QUANTITIES)
    panels = list(dict.fromkeys((r["quantity"], r["link"]) for r in doc["rows"]))
    pipelines = list(dict.fromkeys(r["pipeline"] for r in doc["rows"]))
    fig = new_figure(max(2.6, 0.6 + len(panels) * (0.45 + 0.16 * (len(pipelines) + 1))))
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (quantity, link) in zip(axes, panels):
        rows = [r for r in doc["rows"] if (r["quantity"], r["link"]) == (quantity, link)]
        best = rows[0]["best_baseline"]  # the baselines are the same for every student
        bars = [(r["student"], r["pipeline"], COLORS["device"]) for r in rows]
        bars.append((rows[0]["baselines"][best] if best else None,
                     f"best baseline ({best or 'none reaches it'})", "#999999"))
        ticks = []
        for y, (value, text, color) in enumerate(bars):
            ax.barh(y, value or 0.0, color=color, height=0.7)
            ax.annotate(value_text(value, quantity) if value is not None
                        else "does not reach the floor", (value or 0.0, y), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=6.5)
            ticks.append(text)
        ax.set_yticks(range(len(ticks)), ticks, fontsize=6.5)
        ax.invert_yaxis()
        ax.margins(x=0.18)
        ax.set_title(labels[quantity] + (f" over {link}" if link else ""), loc="left",
                     fontsize=7.5)
        ax.grid(alpha=0.3, axis="x")
    fig.suptitle(f"At top-1 >= {doc['floor']:.1f} %: the least each pipeline needs "
                 "(shorter is better)", x=0.01, ha="left")
    return fig
