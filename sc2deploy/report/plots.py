"""The report's figures of end-to-end latency, energy and bytes vs latency (matplotlib, lazy).

Every drawer returns a Figure; :func:`sc2deploy.report.figure.save` writes it as PNG, PDF
and SVG. Solid = measured, hatched = modeled, in every figure.
"""

from typing import Dict, List, Sequence

from sc2deploy.report.data import (COLORS, NO_ENERGY, PALETTE, PARTIAL, baseline_rows, dig,
                                   end_to_end_bars, energy_ci95, energy_kind_of, energy_label_of,
                                   fmt_num, names, radio_joules, spread)
from sc2deploy.report.figure import (flag_partial_ticks, log_scale, new_figure, styled,
                                     wants_log)
from sc2deploy.report.pareto import candidates, front

HATCH = "///"
COMPUTE = tuple(c for c in PALETTE if c != COLORS["radio"])  # radio keeps its own color
PARTS = (("device", "device (p50)"), ("link", "link"), ("server", "server (p50)"),
         ("reply", "reply (p50)"))


def _bar_label(bar) -> str:
    return bar.short + (f"\n({'; '.join(bar.notes)})" if bar.notes else "")


@styled
def plot_end_to_end(docs: Sequence[dict]):
    """One panel per part (device, link, server, reply when measured) and the total, each on
    its own axis, so the device's milliseconds stay readable beside a slow link's seconds."""
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator, StrMethodFormatter

    bars = end_to_end_bars(docs)
    parts = [(k, t) for k, t in PARTS if k != "reply" or any(b.reply is not None for b in bars)]
    panels = parts + [("total", "total (sum)")]
    fig = new_figure(1.3 + 0.34 * max(1, len(bars)))
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, (key, title) in zip(axes, panels):
        values = []
        for i, bar in enumerate(bars):
            if key == "total":
                value = bar.device + bar.link + bar.server + (bar.reply or 0.0)
            elif key == "reply":
                value = bar.reply
            else:
                value = getattr(bar, key)
            missing = (value is None or (key == "link" and not bar.link_name)
                       or (key == "server" and not bar.has_server))
            if missing:
                ax.text(0.03, i, "none", va="center", color="gray", style="italic",
                        transform=ax.get_yaxis_transform())
                continue
            values.append(value)
            modeled = key == "link" and not bar.measured  # the link model's delay
            color = COLORS.get(key, "#555555")
            ax.barh(i, value, height=0.62, color=color if not modeled else "white",
                    edgecolor=color, hatch=HATCH if modeled else None, linewidth=0.8,
                    alpha=0.6 if bar.baseline else 1.0)
            if key == "total":
                ax.text(value, i, f" {fmt_num(value)}", va="center", fontsize=6.5)
        log = wants_log(values, 50)
        room = 1.45 if key == "total" else 1.12  # the totals are written after the bars
        if log:
            log_scale(ax, "x", "decades")
            ax.set_xlim(min(values) / 1.5, max(values) * room ** 3)
        else:
            ax.set_xlim(0, max(values + [1e-3]) * room)
        if not log:
            ax.xaxis.set_major_locator(MaxNLocator(3))
            ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.6g}"))
        ax.set_title(title, loc="left")
        ax.set_xlabel(f"ms per image{' (log)' if log else ''}")
        ax.grid(axis="x", alpha=0.3, which="both")
    axes[0].set_yticks(range(len(bars)), [_bar_label(b) for b in bars])
    flag_partial_ticks(axes[0], [b.partial for b in bars])
    axes[0].set_ylim(max(len(bars), 1) - 0.5, -0.5)
    handles = [Patch(color=COLORS["device"], label="device: measured p50"),
               Patch(facecolor="white", edgecolor=COLORS["link"], hatch=HATCH,
                     label="link: modeled delay of the mean payload"),
               Patch(color=COLORS["server"], label="server: measured or given p50")]
    if any(b.measured for b in bars):
        handles.insert(2, Patch(color=COLORS["link"], label="link: measured (stream) p50"))
    if any(b.reply is not None for b in bars):
        handles.append(Patch(color=COLORS["reply"], label="reply: measured p50"))
    if any(b.baseline for b in bars):
        handles.append(Patch(facecolor="#BBBBBB", alpha=0.6, label="pale: JPEG/WebP baseline"))
    fig.legend(handles=handles, loc="outside lower center", ncol=3, frameon=False)
    if not bars:
        axes[0].text(0.5, 0.5, "no device results", transform=axes[0].transAxes, ha="center")
    return fig


@styled
def plot_energy(docs: Sequence[dict]):
    """Energy per image of device results: compute (measured solid with its 95 % CI, modeled
    hatched without) + radio (the link model's, hatched), stacked."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    docs = [d for d in docs if d["kind"] == "device"]
    all_names = names(docs)
    totals = [dig(d, "energy", "joules_per_image", "total") if energy_kind_of(d) != "none"
              else None for d in docs]
    radios = [radio_joules(d) for d in docs]
    cis = [energy_ci95(d) for d in docs]
    highs = [max([t or 0.0] + list(ci or [])) + (r or 0.0) for t, r, ci in zip(totals, radios, cis)]
    scale, unit = (1e3, "mJ") if highs and max(highs) < 1 else (1.0, "J")
    fig = new_figure(1.4 + 0.3 * max(1, len(docs)))
    ax = fig.add_subplot()
    colors, handles, labels = {}, {}, []
    right = max(highs + [1e-9]) * scale
    for i, (doc, total, radio, ci) in enumerate(zip(docs, totals, radios, cis)):
        compute = (total or 0.0) * scale
        if total is not None:
            label = energy_label_of(doc)
            color = colors.setdefault(label, COMPUTE[len(colors) % len(COMPUTE)])
            modeled = energy_kind_of(doc) == "modeled"
            ax.barh(i, compute, height=0.62, facecolor="white" if modeled else color,
                    edgecolor=color, hatch=HATCH if modeled else None, linewidth=1)
            handles.setdefault(label, Patch(facecolor="white" if modeled else color,
                                            edgecolor=color, hatch=HATCH if modeled else None,
                                            label=f"compute: {label}"))
            if ci:
                ax.errorbar(compute, i, xerr=[[max(total - ci[0], 0) * scale],
                                              [max(ci[1] - total, 0) * scale]],
                            color="black", capsize=3, linewidth=1)
            dynamic = doc["energy"]["joules_per_image"].get("dynamic")
            if dynamic is not None:
                ax.plot([dynamic * scale], [i], marker="|", markersize=11, markeredgewidth=1.8,
                        color="black", linestyle="none")
                handles.setdefault("~dynamic", Line2D([], [], marker="|", markersize=10,
                                                      markeredgewidth=1.8, color="black",
                                                      linestyle="none",
                                                      label="compute − idle baseline"))
        if radio is not None:
            ax.barh(i, radio * scale, left=compute, height=0.62, facecolor="white",
                    edgecolor=COLORS["radio"], hatch="\\\\\\", linewidth=1)
            handles.setdefault("~radio", Patch(facecolor="white", edgecolor=COLORS["radio"],
                                               hatch="\\\\\\",
                                               label="radio: modeled (link TX power × airtime)"))
        if total is None and radio is None:
            ax.text(right * 0.01, i, NO_ENERGY, va="center", color="gray", style="italic")
            continue
        text = f"{total * scale:.3g}" if total is not None else "no compute energy"
        if radio is not None:
            text += f" + {radio * scale:.3g}" + (f" = {(total + radio) * scale:.3g}"
                                                 if total is not None else " (radio)")
        end = compute + (radio or 0.0) * scale
        if ci:
            end = max(end, ci[1] * scale)
        labels.append(ax.text(end + right * 0.015, i, f"{text} {unit}", va="center",
                              fontsize=7))
    ax.set_yticks(range(len(docs)), all_names)
    flag_partial_ticks(ax, [not d["complete"] for d in docs])
    ax.set_ylim(max(len(docs), 1) - 0.5, -0.5)
    ax.set_xlabel(f"energy per image ({unit})")
    ax.set_title("Energy per image = compute + radio (error bars: 95 % CI, measured only)",
                 loc="left")
    ax.grid(axis="x", alpha=0.3)
    order = sorted(handles, key=lambda k: (k.startswith("~"), k))
    if order:
        fig.legend(handles=[handles[k] for k in order], loc="outside lower center", ncol=2,
                   frameon=False)
    ax.set_xlim(0, _room_for(fig, ax, labels, right * 1.3))
    return fig


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


@styled
def plot_bytes_latency(docs: Sequence[dict], evaluations: Sequence[dict] = ()):
    """Bytes per image vs device latency (p50, bars: interquartile range), rings on the
    noise-aware Pareto front (see :mod:`sc2deploy.report.pareto`), baselines apart."""
    device = candidates(docs)  # host checks are left out (another runtime's numbers)
    result = front([d for d, _ in device], evaluations)
    fig = new_figure(4.4)
    ax = fig.add_subplot()
    target_colors: Dict[str, str] = {}
    xs: List[float] = []
    ys: List[float] = []
    for (doc, name), on in zip(device, result.on_front):
        target = doc.get("target", "?")
        first = target not in target_colors
        color = target_colors.setdefault(target, PALETTE[len(target_colors) % len(PALETTE)])
        lo, x, hi = spread(doc)
        y = doc["bytes"]["mean"]
        xs += [lo, hi]
        ys.append(y)
        part = not doc["complete"]
        ax.errorbar([x], [y], xerr=[[x - lo], [hi - x]], marker="o", markersize=6, zorder=3,
                    color=color, markerfacecolor="white" if part else color, capsize=2,
                    elinewidth=0.8, linestyle="none", label=f"target {target}" if first else None)
        if on:
            ax.plot([x], [y], marker="o", markersize=11, markerfacecolor="none",
                    markeredgecolor="black", markeredgewidth=0.8, linestyle="none", zorder=2)
    if len({d.get("target") for d, _ in device}) < len(device):
        order = sorted(range(len(device)), key=lambda j: spread(device[j][0])[1])
        for k, i in enumerate(order):
            doc, name = device[i]
            ax.annotate(name, (spread(doc)[1], doc["bytes"]["mean"]), xytext=(5, 4 + 9 * (k % 4)),
                        textcoords="offset points", fontsize=6.5)
    if any(result.on_front):
        ax.plot([], [], marker="o", markersize=11, markerfacecolor="none", linestyle="none",
                markeredgecolor="black", label="Pareto front: " + ", ".join(result.objectives)
                + " (ties kept" + ("; its bytes and top-1 from the evaluated images"
                                   if result.paired else "") + ")")
    if any(not d["complete"] for d, _ in device):
        ax.plot([], [], marker="o", linestyle="none", color="white", markeredgecolor="#555555",
                label=f"hollow: {PARTIAL}")
    markers = {"jpeg": ("s", "JPEG"), "webp": ("^", "WebP")}
    shown = set()
    for base, _, _ in baseline_rows(docs):
        family = base["name"].split("-")[0]
        marker, title = markers.get(family, ("P", family))
        ax.plot([base["encode_ms_p50"]], [base["bytes_mean"]], marker=marker, markersize=6,
                linestyle="none", color="#8C8C8C", markeredgecolor="black", zorder=3,
                label=f"baseline {title} (encode p50, not in the front)"
                if family not in shown else None)
        shown.add(family)
        ax.annotate(base["name"], (base["encode_ms_p50"], base["bytes_mean"]),
                    xytext=(5, -9), textcoords="offset points", fontsize=6.5, color="#555555")
        xs.append(base["encode_ms_p50"])
        ys.append(base["bytes_mean"])
    xlog, ylog = wants_log(xs, 20), wants_log(ys, 20)
    if xlog:
        log_scale(ax, "x")
    else:
        ax.set_xlim(0, max(xs + [1.0]) * 1.15)
    if ylog:
        log_scale(ax, "y")
    else:
        ax.set_ylim(0, max(ys + [1.0]) * 1.15)
    ax.set_xlabel(f"device latency per image, total p50 (ms{', log scale' if xlog else ''}); "
                  "bars: interquartile range")
    ax.set_ylabel(f"bytes per image, mean{' (log scale)' if ylog else ''}")
    ax.set_title("Bytes vs device latency (lower left is better)", loc="left")
    ax.grid(alpha=0.3, which="both")
    if not xs:
        ax.text(0.5, 0.5, "no device results", transform=ax.transAxes, ha="center")
    handles, labels = ax.get_legend_handles_labels()
    if handles:  # outside the axes: the lower left, where the best points are, stays clear
        fig.legend(handles, labels, loc="outside lower center", ncol=2, frameon=False)
    return fig
