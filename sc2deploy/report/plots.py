"""The report's PNG plots (matplotlib imported lazily, Agg canvas, no pyplot)."""

from pathlib import Path
from typing import Dict, Sequence, Union

from sc2deploy.errors import UsageError
from sc2deploy.report.data import (COLORS, NO_ENERGY, PALETTE, PARTIAL, all_stages,
                                             baseline_rows, dig, end_to_end_bars, energy_ci95,
                                             energy_kind_of, energy_label_of, modeled_tag, names)
from sc2deploy.results.schema import pareto_front


def _figure(width: float, height: float):
    """A matplotlib Figure on the Agg canvas (no pyplot, no global backend change)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError("reports need matplotlib, which is not installed: "
                         "pip install 'sc2deploy[report]'") from None
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    fig.savefig(path, format="png", dpi=110, metadata={"Software": None})
    return path


def _flag_partial_ticks(ax, partial: Sequence[bool]) -> None:
    for tick, flag in zip(ax.get_yticklabels(), partial):
        if flag:
            tick.set_color("#B22222")


def _log_scale(ax, which: str) -> None:
    """Log scale with plain-number ticks at 1, 2, 5 x 10^k."""
    from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter

    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(StrMethodFormatter("{x:,.6g}"))
    axis.set_minor_formatter(NullFormatter())


def _wants_log(values: Sequence[float], ratio: float) -> bool:
    positive = [v for v in values if v > 0]
    return len(positive) > 1 and max(positive) / min(positive) > ratio


def plot_end_to_end(docs: Sequence[dict], path: Union[str, Path]) -> Path:
    """Stacked device / link / server bars per result, baselines hatched."""
    from matplotlib.patches import Patch

    bars = end_to_end_bars(docs)
    fig = _figure(10, 1.6 + 0.5 * max(1, len(bars)))
    ax = fig.add_subplot()
    y = list(range(len(bars)))
    left = [0.0] * len(bars)
    for part in ("device", "link", "server"):
        widths = [getattr(b, part) for b in bars]
        for i, (bar, w) in enumerate(zip(bars, widths)):
            ax.barh(i, w, left=left[i], height=0.62, color=COLORS[part],
                    alpha=0.55 if bar.baseline else 1.0, hatch="///" if bar.baseline else None,
                    edgecolor="#333333" if bar.baseline else "white", linewidth=0.4)
        left = [a + w for a, w in zip(left, widths)]
    right = max(left) if bars else 1.0
    for i, bar in enumerate(bars):
        ax.text(left[i] + right * 0.01, i, f"{left[i]:,.1f} ms", va="center", fontsize=8)
    ax.set_yticks(y, [b.short + (f"\n({'; '.join(b.notes)})" if b.notes else "")
                      for b in bars], fontsize=8)
    _flag_partial_ticks(ax, [b.partial for b in bars])
    ax.set_ylim(max(len(bars), 1) - 0.5, -0.5)
    ax.set_xlim(0, (right or 1.0) * 1.15)
    ax.set_xlabel("end-to-end latency per image (ms)")
    ax.set_title("End-to-end latency: device (p50) + link (mean payload) + server")
    ax.grid(axis="x", alpha=0.3)
    handles = [Patch(color=COLORS["device"], label="device (p50 total / baseline encode p50)"),
               Patch(color=COLORS["link"], label="link delay"),
               Patch(color=COLORS["server"], label="server"),
               Patch(facecolor="white", edgecolor="#333333", hatch="///",
                     label="baseline: JPEG/WebP of the input")]
    fig.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    if not bars:
        ax.text(0.5, 0.5, "no device results", transform=ax.transAxes, ha="center")
    return _save(fig, Path(path))


def _draw_box(ax, y: float, s: dict, color: str) -> None:
    """Box p50..p90 (thick line at p50), whiskers min..p99, x = max, diamond = mean."""
    from matplotlib.patches import Rectangle

    h = 0.56
    ax.add_patch(Rectangle((s["p50"], y - h / 2), max(s["p90"] - s["p50"], 0), h,
                           facecolor=color, alpha=0.45, edgecolor=color, linewidth=1))
    ax.plot([s["min"], s["p50"]], [y, y], color="#333333", linewidth=1)
    ax.plot([s["p90"], s["p99"]], [y, y], color="#333333", linewidth=1)
    for x in (s["min"], s["p99"]):
        ax.plot([x, x], [y - h / 4, y + h / 4], color="#333333", linewidth=1)
    ax.plot([s["p50"], s["p50"]], [y - h / 2, y + h / 2], color="black", linewidth=2.2)
    ax.plot([s["mean"]], [y], marker="D", markersize=4, color="white",
            markeredgecolor="black", linestyle="none")
    ax.plot([s["max"]], [y], marker="x", markersize=5, color="#B22222", linestyle="none")


def plot_stage_latency(docs: Sequence[dict], path: Union[str, Path]) -> Path:
    """One panel per stage, one box per result, drawn from the stored percentiles."""
    from matplotlib.lines import Line2D

    all_names = names(docs)
    stages = all_stages(docs)
    rows = {s: [(n, d["latency_ms"][s], not d["complete"]) for d, n in zip(docs, all_names)
                if s in d["latency_ms"]] for s in stages}
    heights = [0.9 + 0.36 * len(rows[s]) for s in stages]
    fig = _figure(10, sum(heights) + 0.8)
    axes = fig.subplots(len(stages), 1, height_ratios=heights, squeeze=False)[:, 0]
    for ax, stage in zip(axes, stages):
        items = rows[stage]
        for i, (_, stats, _) in enumerate(items):
            if stats["n"] > 0:
                _draw_box(ax, i, stats, PALETTE[0] if stage != "total" else PALETTE[3])
            else:
                ax.text(0.01, i, "no samples", va="center", fontsize=8, color="gray",
                        transform=ax.get_yaxis_transform())
        values = [v for _, s, _ in items if s["n"] > 0 for v in (s["min"], s["max"])]
        log = _wants_log(values, 30) and min(values) > 0
        if log:
            _log_scale(ax, "x")
        elif values:
            ax.set_xlim(0, max(values) * 1.05 or 1.0)
        ax.set_yticks(range(len(items)), [n for n, _, _ in items], fontsize=8)
        _flag_partial_ticks(ax, [p for _, _, p in items])
        ax.set_ylim(len(items) - 0.5, -0.5)
        ax.set_title(f"stage: {stage}", fontsize=9, loc="left")
        ax.set_xlabel(f"latency (ms{', log scale' if log else ''})", fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", alpha=0.3, which="both")
    handles = [Line2D([], [], color="black", linewidth=2.2, label="p50"),
               Line2D([], [], color=PALETTE[0], linewidth=6, alpha=0.45, label="box: p50 to p90"),
               Line2D([], [], color="#333333", label="whiskers: min to p99"),
               Line2D([], [], marker="D", color="white", markeredgecolor="black",
                      linestyle="none", label="mean"),
               Line2D([], [], marker="x", color="#B22222", linestyle="none", label="max")]
    fig.legend(handles=handles, loc="outside lower center", ncol=5, fontsize=8, frameon=False)
    return _save(fig, Path(path))


def plot_energy(docs: Sequence[dict], path: Union[str, Path]) -> Path:
    """Energy per image: measured solid with 95 % CI bars, modeled hatched without (a model
    has no measurement precision), gaps named."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    all_names = names(docs)
    totals = [dig(d, "energy", "joules_per_image", "total") if energy_kind_of(d) != "none"
              else None for d in docs]
    cis = [energy_ci95(d) for d in docs]
    highs = [max([t] + list(ci or [])) for t, ci in zip(totals, cis) if t is not None]
    scale, unit = (1e3, "mJ") if highs and max(highs) < 1 else (1.0, "J")
    fig = _figure(10, 1.8 + 0.42 * max(1, len(docs)))
    ax = fig.add_subplot()
    colors, handles, labels = {}, {}, []
    right = max(highs) * scale if highs else 1.0
    for i, (doc, total, ci) in enumerate(zip(docs, totals, cis)):
        if total is None:
            ax.text(right * 0.01, i, NO_ENERGY, va="center", fontsize=8, color="gray",
                    style="italic")
            continue
        label = energy_label_of(doc)
        color = colors.setdefault(label, PALETTE[len(colors) % len(PALETTE)])
        modeled = energy_kind_of(doc) == "modeled"
        ax.barh(i, total * scale, height=0.62, facecolor="white" if modeled else color,
                edgecolor=color, hatch="///" if modeled else None, linewidth=1.2)
        handles.setdefault(label, Patch(facecolor="white" if modeled else color, edgecolor=color,
                                        hatch="///" if modeled else None, label=label))
        joules = doc["energy"]["joules_per_image"]
        if ci:
            lo, hi = ci
            ax.errorbar(total * scale, i, xerr=[[max(total - lo, 0) * scale],
                                                [max(hi - total, 0) * scale]],
                        color="black", capsize=3, linewidth=1)
        if joules.get("dynamic") is not None:
            ax.plot([joules["dynamic"] * scale], [i], marker="|", markersize=14,
                    markeredgewidth=2, color="black", linestyle="none")
            handles.setdefault("dynamic", Line2D([], [], marker="|", markersize=12,
                                                 markeredgewidth=2, color="black",
                                                 linestyle="none",
                                                 label="dynamic (total − idle)"))
        top = max([total] + list(ci or [])) * scale
        tag = f" ({modeled_tag(doc)})" if modeled else ""
        labels.append(ax.text(top + right * 0.015, i, f"{total * scale:.3g} {unit}{tag}",
                              va="center", fontsize=8))
    ax.set_yticks(range(len(docs)), all_names, fontsize=8)
    _flag_partial_ticks(ax, [not d["complete"] for d in docs])
    ax.set_ylim(len(docs) - 0.5, -0.5)
    ax.set_xlim(0, right * 1.3)
    ax.set_xlabel(f"energy per image ({unit})")
    ax.set_title("Energy per image (total; error bars: 95 % CI over repeats, measured only)")
    ax.grid(axis="x", alpha=0.3)
    order = sorted(handles, key=lambda k: (k == "dynamic", k))
    if order:
        fig.legend(handles=[handles[k] for k in order], loc="outside lower center",
                   ncol=min(3, len(order)), fontsize=8, frameon=False)
    ax.set_xlim(0, _room_for(fig, ax, labels, right * 1.3))
    return _save(fig, Path(path))


def _room_for(fig, ax, texts, limit: float) -> float:
    """An x limit (at least ``limit``) that keeps the texts, placed at data x, in the axes."""
    if not texts:
        return limit
    for text in texts:  # the layout would shrink the axes around texts sticking out of them
        text.set_visible(False)
    fig.get_layout_engine().execute(fig)
    renderer = fig.canvas.get_renderer()
    axes_px = ax.get_window_extent(renderer).width
    for text in texts:
        text.set_visible(True)
        free_px = axes_px * 0.98 - text.get_window_extent(renderer).width
        if free_px > axes_px * 0.2:  # else the text cannot fit at any scale: leave it
            limit = max(limit, text.get_position()[0] * axes_px / free_px)
    return limit


def plot_bytes_latency(docs: Sequence[dict], path: Union[str, Path]) -> Path:
    """Bytes per image vs device latency p50, Pareto front of the results, baselines apart."""
    points, point_names, partial, targets = [], [], [], []
    for doc, name in zip(docs, names(docs)):
        if doc["kind"] == "device":
            points.append((doc["latency_ms"]["total"]["p50"], doc["bytes"]["mean"]))
            point_names.append(name)
            partial.append(not doc["complete"])
            targets.append(doc.get("target", "?"))
    bases = baseline_rows(docs)
    fig = _figure(10, 6.5)
    ax = fig.add_subplot()
    target_colors: Dict[str, str] = {}
    for (x, y), part, target in zip(points, partial, targets):
        first = target not in target_colors
        color = target_colors.setdefault(target, PALETTE[len(target_colors) % len(PALETTE)])
        ax.plot([x], [y], marker="o", markersize=8, linestyle="none", zorder=3,
                color="white" if part else color, markeredgecolor=color, markeredgewidth=1.5,
                label=f"target {target}" if first else None)
    # Colors name the targets; labels are needed only when a target appears more than once.
    # Neighbours (sorted by latency) get staggered label heights so labels do not overlap.
    if len(set(targets)) < len(targets):
        for k, i in enumerate(sorted(range(len(points)), key=lambda j: points[j][0])):
            ax.annotate(point_names[i], points[i], xytext=(5, 4 + 10 * (k % 4)),
                        textcoords="offset points", fontsize=7)
    if any(partial):
        ax.plot([], [], marker="o", markersize=8, linestyle="none", color="white",
                markeredgecolor="#555555", label=f"hollow: {PARTIAL}")
    front = pareto_front(points)
    if front:
        ax.plot([points[i][0] for i in front], [points[i][1] for i in front],
                drawstyle="steps-post", color="black", linewidth=1.2, alpha=0.6, zorder=2,
                label="Pareto front (results)")
        ax.plot([points[i][0] for i in front], [points[i][1] for i in front], marker="o",
                markersize=13, linestyle="none", markerfacecolor="none", markeredgecolor="black",
                markeredgewidth=0.8, zorder=2, label="on the front")
    markers = {"jpeg": ("s", "JPEG"), "webp": ("^", "WebP")}
    shown = set()
    for base, doc, _ in bases:
        family = base["name"].split("-")[0]
        marker, title = markers.get(family, ("P", family))
        ax.plot([base["encode_ms_p50"]], [base["bytes_mean"]], marker=marker, markersize=8,
                linestyle="none", color="#8C8C8C", markeredgecolor="black", zorder=3,
                label=f"baseline {title} (encode p50)" if family not in shown else None)
        shown.add(family)
        ax.annotate(base["name"], (base["encode_ms_p50"], base["bytes_mean"]), xytext=(5, -10),
                    textcoords="offset points", fontsize=7, color="#555555")
    xs = [p[0] for p in points] + [b["encode_ms_p50"] for b, _, _ in bases]
    ys = [p[1] for p in points] + [b["bytes_mean"] for b, _, _ in bases]
    xlog, ylog = _wants_log(xs, 20) and min(xs) > 0, _wants_log(ys, 20) and min(ys) > 0
    if xlog:
        _log_scale(ax, "x")
    else:
        ax.set_xlim(0, max(xs + [1.0]) * 1.15)
    if ylog:
        _log_scale(ax, "y")
    else:
        ax.set_ylim(0, max(ys + [1.0]) * 1.15)
    ax.set_xlabel(f"device latency per image, p50 total (ms{', log scale' if xlog else ''})")
    ax.set_ylabel(f"bytes per image, mean{' (log scale)' if ylog else ''}")
    ax.set_title("Bytes vs device latency (lower left is better)")
    ax.grid(alpha=0.3, which="both")
    if not points and not bases:
        ax.text(0.5, 0.5, "no device results", transform=ax.transAxes, ha="center")
    handles, labels = ax.get_legend_handles_labels()
    if handles:  # outside the axes: the lower left, where the best points are, stays clear
        fig.legend(handles, labels, loc="outside lower center", ncol=min(4, len(handles)),
                   fontsize=8, frameon=False)
    return _save(fig, Path(path))


# ---------------------------------------------------------------- tables
