"""The adaptive timeline: per adaptive run a column of three panels on one x axis (the point
chosen; the throughput estimate with the true or measured rate; end to end vs the deadline)."""

from typing import Sequence

from sc2deploy.report.adaptive import adaptive_docs, timeline
from sc2deploy.report.data import PALETTE
from sc2deploy.report.figure import WIDTH_IN, log_scale, new_figure, styled, wants_log

MET, MISSED, GREY = "#55A868", "#C44E52", "#8C8C8C"


@styled
def plot_adaptive(docs: Sequence[dict]):
    from matplotlib.lines import Line2D

    lines = [timeline(d, n) for d, n in adaptive_docs(docs)]
    fig = new_figure(5.4, WIDTH_IN if len(lines) == 1 else min(0.62 * WIDTH_IN * len(lines), 16))
    axes = fig.subplots(3, len(lines), squeeze=False, sharex="col")
    for column, tl in enumerate(lines):
        chosen_ax, rate_ax, e2e_ax = axes[:, column]
        colors = [MET if m else MISSED for m in tl.met]
        ys = [tl.points.index(p) for p in tl.chosen]
        chosen_ax.step(tl.x, ys, where="post", color=GREY, linewidth=0.7)
        chosen_ax.scatter(tl.x, ys, c=colors, s=7, zorder=3, linewidths=0)
        chosen_ax.set_yticks(range(len(tl.points)), tl.points)
        chosen_ax.set_ylim(-0.5, len(tl.points) - 0.5)
        chosen_ax.set_ylabel("point (fewest bytes low)")
        chosen_ax.set_title(f"{tl.name} ({'modeled' if tl.modeled else 'measured'})",
                            loc="left")

        rates = [b / 1e3 for b in tl.estimate_bps]
        rate_ax.step(tl.x, rates, where="post", color=PALETTE[0], linewidth=1.1,
                     label="estimate it chose with")
        shown = list(rates)
        if tl.trace:
            xs = [t for t, _ in tl.trace] + [tl.duration_s]
            true = [bps / 1e3 for _, bps in tl.trace]
            rate_ax.step(xs, true + true[-1:], where="post", color="black", linestyle="--",
                         linewidth=0.9, label="true rate (trace)")
            shown += true
        measured = [(x, m / 1e3) for x, m in zip(tl.x, tl.measured_bps) if m is not None]
        if measured:
            rate_ax.scatter(*zip(*measured), marker="x", s=9, color=PALETTE[1], linewidths=0.8,
                            label="measured per send")
            shown += [m for _, m in measured]
        if wants_log(shown, 5):
            log_scale(rate_ax, "y", "dense")
        rate_ax.set_ylabel("throughput (kbit/s)")
        rate_ax.legend(loc="best", frameon=False)
        rate_ax.grid(alpha=0.3)

        e2e_ax.scatter(tl.x, tl.predicted_ms, s=10, facecolors="none", edgecolors=GREY,
                       linewidths=0.6)
        e2e_ax.scatter(tl.x, tl.e2e_ms, c=colors, s=7, zorder=3, linewidths=0)
        e2e_ax.axhline(tl.deadline_ms, color=MISSED, linestyle="--", linewidth=0.9)
        if wants_log(tl.e2e_ms + tl.predicted_ms + [tl.deadline_ms], 20):
            log_scale(e2e_ax, "y")
        e2e_ax.set_ylabel("end to end (ms)")
        e2e_ax.set_xlabel(tl.x_label)
        e2e_ax.grid(alpha=0.3)
        met = sum(tl.met)
        e2e_ax.legend(handles=[
            Line2D([], [], marker="o", linestyle="none", color=MET, markersize=3.5,
                   label=f"met ({met})"),
            Line2D([], [], marker="o", linestyle="none", color=MISSED, markersize=3.5,
                   label=f"missed ({len(tl.met) - met})"),
            Line2D([], [], marker="o", linestyle="none", markerfacecolor="none",
                   markeredgecolor=GREY, markersize=4, label="predicted"),
            Line2D([], [], color=MISSED, linestyle="--", label=f"deadline {tl.deadline_ms:g} ms")],
            loc="best", frameon=False)
    return fig
