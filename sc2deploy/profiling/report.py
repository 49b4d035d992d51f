"""Reports from profiling results: Markdown, self-contained HTML, CSV and PNG plots.

::

    results.json ... ─ validate ─┬─ tables ─┬─ report.md    (plots by relative path)
                                 │          └─ report.html  (plots as data: URIs, inline CSS)
                                 ├─ results.csv              (one row per results file)
                                 └─ plots (matplotlib, Agg) ─ *.png

Partial (interrupted) results are included and flagged wherever they appear;
modeled energy is labeled "modeled" in every table and plot. matplotlib is
imported only inside the plotting functions (``pip install 'sc2deploy[report]'``).
"""

import base64
import csv
import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from sc2deploy.errors import ResultsError, UsageError
from sc2deploy.profiling.results import pareto_front, validate

PARTIAL = "partial (interrupted)"
NO_ENERGY = "no energy data"
PLOTS = {"end_to_end": "latency_end_to_end.png", "stages": "latency_stages.png",
         "energy": "energy_per_image.png", "pareto": "bytes_vs_latency.png"}
STAGE_ORDER = ("load", "preprocess", "head", "code", "decode", "decoder")
COLORS = {"device": "#4C72B0", "link": "#DD8452", "server": "#55A868"}
PALETTE = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3",
           "#8C8C8C", "#CCB974", "#64B5CD")
DASH = "—"


# ---------------------------------------------------------------- names and numbers

def names(docs: Sequence[dict]) -> List[str]:
    """One unique display name per result: its label (``#2``… on repeats), flagged if partial."""
    seen: Dict[str, int] = {}
    out = []
    for doc in docs:
        label = doc["label"]
        seen[label] = seen.get(label, 0) + 1
        name = label if seen[label] == 1 else f"{label} #{seen[label]}"
        out.append(name if doc["complete"] else f"{name} [{PARTIAL}]")
    return out


def _fmt(value: Optional[float], unit: str = "") -> str:
    """A number with about three significant digits (``—`` for None)."""
    if value is None:
        return DASH
    v = float(value)
    if v == 0:
        text = "0"
    elif abs(v) >= 100:
        text = f"{v:,.0f}"
    elif abs(v) >= 10:
        text = f"{v:.1f}"
    elif abs(v) >= 1:
        text = f"{v:.2f}"
    else:
        text = f"{v:.3g}"
    return f"{text} {unit}".rstrip()


def _int(value: Optional[float]) -> str:
    return DASH if value is None else f"{float(value):,.0f}"


def _text(value) -> str:
    if value is None or value == "":
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _get(doc: dict, *keys, default=None):
    """doc[k1][k2]... or ``default`` when a level is missing or null."""
    for key in keys:
        if not isinstance(doc, dict) or doc.get(key) is None:
            return default
        doc = doc[key]
    return doc


def _stages(doc: dict) -> List[str]:
    stages = [s for s in STAGE_ORDER if s in doc["latency_ms"]]
    stages += sorted(s for s in doc["latency_ms"] if s not in STAGE_ORDER and s != "total")
    return stages + ["total"]


def _all_stages(docs: Sequence[dict]) -> List[str]:
    stages: List[str] = []
    for doc in docs:
        stages += [s for s in _stages(doc) if s not in stages and s != "total"]
    known = [s for s in STAGE_ORDER if s in stages]
    return known + [s for s in stages if s not in known] + ["total"]


def _device_key(doc: dict) -> str:
    cond = doc.get("conditions") or {}
    return str(cond.get("device_model") or cond.get("hostname") or cond.get("cpu") or "device")


def _energy_kind(doc: dict) -> str:
    """'measured', 'modeled' or 'none' (no energy block or no J/image)."""
    energy = doc.get("energy")
    if not energy or energy.get("joules_per_image") is None:
        return "none"
    return energy["kind"]


def _energy_label(doc: dict) -> str:
    """'measured (rapl)', 'modeled (rpi4)' or 'no energy data'."""
    kind = _energy_kind(doc)
    if kind == "none":
        return NO_ENERGY
    source = doc["energy"].get("source") or "unknown source"
    if kind == "modeled" and source.startswith("model:"):
        source = source[len("model:"):]
    return f"{kind} ({source})"


def _server_ms(doc: dict) -> Optional[float]:
    e2e = doc.get("end_to_end_ms")
    if e2e and e2e.get("server") is not None:
        return e2e["server"]
    return _get(doc, "server_ms", "ms")


@dataclass
class _Bar:
    """One stacked end-to-end bar: a result or an input-compression baseline."""

    short: str
    device: float
    link: float
    server: float
    link_name: Optional[str]
    server_source: Optional[str]  # "measured", "given", "assumed = result's", None: 0
    baseline: bool = False
    partial: bool = False
    context: str = ""  # baselines: link and device

    @property
    def has_server(self) -> bool:
        return self.server_source is not None

    @property
    def name(self) -> str:
        return f"{self.short} ({self.context})" if self.context else self.short

    @property
    def notes(self) -> List[str]:
        notes = [self.context] if self.context else []
        if not self.link_name and not self.baseline:
            notes.append("no link")
        if not self.has_server:
            notes.append("no server time: 0 ms")
        return notes


def end_to_end_bars(docs: Sequence[dict]) -> List[_Bar]:
    """Device results, then each distinct baseline (name, link, device) once."""
    bars, seen = [], set()
    for doc, name in zip(docs, names(docs)):
        if doc["kind"] != "device":
            continue
        e2e = doc.get("end_to_end_ms") or {}
        server = _server_ms(doc)
        link_name = _get(doc, "link", "name")
        source = _get(doc, "server_ms", "source", default="given") if server is not None else None
        bars.append(_Bar(name, e2e.get("device", doc["latency_ms"]["total"]["p50"]),
                         e2e.get("link", 0.0) if link_name else 0.0, server or 0.0, link_name,
                         source, partial=not doc["complete"]))
    devices = {_device_key(d) for d in docs if d.get("baselines")}
    for doc in docs:
        for base in doc.get("baselines") or []:
            link_name = _get(doc, "link", "name") if base["link_ms"] is not None else None
            key = (base["name"], link_name, _device_key(doc))
            if key in seen:
                continue
            seen.add(key)
            where = f", {_device_key(doc)}" if len(devices) > 1 else ""
            server = _server_ms(doc)
            bars.append(_Bar(f"baseline {base['name']}", base["encode_ms_p50"],
                             base["link_ms"] or 0.0, server or 0.0, link_name,
                             "assumed = result's" if server is not None else None,
                             baseline=True, context=f"{link_name or 'no link'}{where}"))
    return bars


def _baselines(docs: Sequence[dict]) -> List[Tuple[dict, dict, str]]:
    """(baseline, its result, result name), one per distinct (name, device)."""
    out, seen = [], set()
    for doc, name in zip(docs, names(docs)):
        for base in doc.get("baselines") or []:
            key = (base["name"], _device_key(doc))
            if key not in seen:
                seen.add(key)
                out.append((base, doc, name))
    return out


# ---------------------------------------------------------------- plots

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
    stages = _all_stages(docs)
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
    """Energy per image: measured solid, modeled hatched, 95 % CI bars, gaps named."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    all_names = names(docs)
    totals = [_get(d, "energy", "joules_per_image", "total") if _energy_kind(d) != "none"
              else None for d in docs]
    highs = [max([t] + list(_get(d, "energy", "joules_per_image", "ci95", default=[])))
             for d, t in zip(docs, totals) if t is not None]
    scale, unit = (1e3, "mJ") if highs and max(highs) < 1 else (1.0, "J")
    fig = _figure(10, 1.8 + 0.42 * max(1, len(docs)))
    ax = fig.add_subplot()
    colors, handles = {}, {}
    right = max(highs) * scale if highs else 1.0
    for i, (doc, total) in enumerate(zip(docs, totals)):
        if total is None:
            ax.text(right * 0.01, i, NO_ENERGY, va="center", fontsize=8, color="gray",
                    style="italic")
            continue
        label = _energy_label(doc)
        color = colors.setdefault(label, PALETTE[len(colors) % len(PALETTE)])
        modeled = _energy_kind(doc) == "modeled"
        ax.barh(i, total * scale, height=0.62, facecolor="white" if modeled else color,
                edgecolor=color, hatch="///" if modeled else None, linewidth=1.2)
        handles.setdefault(label, Patch(facecolor="white" if modeled else color, edgecolor=color,
                                        hatch="///" if modeled else None, label=label))
        joules = doc["energy"]["joules_per_image"]
        if joules.get("ci95"):
            lo, hi = joules["ci95"]
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
        top = max([total] + list(joules.get("ci95") or [])) * scale
        ax.text(top + right * 0.015, i,
                f"{total * scale:.3g} {unit}{' (modeled)' if modeled else ''}",
                va="center", fontsize=8)
    ax.set_yticks(range(len(docs)), all_names, fontsize=8)
    _flag_partial_ticks(ax, [not d["complete"] for d in docs])
    ax.set_ylim(len(docs) - 0.5, -0.5)
    ax.set_xlim(0, right * 1.3)
    ax.set_xlabel(f"energy per image ({unit})")
    ax.set_title("Energy per image (total; error bars: 95 % CI over repeats)")
    ax.grid(axis="x", alpha=0.3)
    order = sorted(handles, key=lambda k: (k == "dynamic", k))
    if order:
        fig.legend(handles=[handles[k] for k in order], loc="outside lower center",
                   ncol=min(3, len(order)), fontsize=8, frameon=False)
    return _save(fig, Path(path))


def plot_bytes_latency(docs: Sequence[dict], path: Union[str, Path]) -> Path:
    """Bytes per image vs device latency p50, Pareto front of the results, baselines apart."""
    points, point_names, partial, targets = [], [], [], []
    for doc, name in zip(docs, names(docs)):
        if doc["kind"] == "device":
            points.append((doc["latency_ms"]["total"]["p50"], doc["bytes"]["mean"]))
            point_names.append(name)
            partial.append(not doc["complete"])
            targets.append(doc.get("target", "?"))
    bases = _baselines(docs)
    fig = _figure(10, 6.5)
    ax = fig.add_subplot()
    target_colors: Dict[str, str] = {}
    for (x, y), name, part, target in zip(points, point_names, partial, targets):
        first = target not in target_colors
        color = target_colors.setdefault(target, PALETTE[len(target_colors) % len(PALETTE)])
        ax.plot([x], [y], marker="o", markersize=8, linestyle="none", zorder=3,
                color="white" if part else color, markeredgecolor=color, markeredgewidth=1.5,
                label=f"target {target}" if first else None)
        ax.annotate(name, (x, y), xytext=(5, 4), textcoords="offset points", fontsize=7)
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

@dataclass
class Table:
    """A table shared by the Markdown and HTML renderers (cells are plain text)."""

    headers: List[str]
    rows: List[List[str]] = field(default_factory=list)
    partial: List[bool] = field(default_factory=list)

    def add(self, cells: Sequence, partial: bool = False) -> None:
        self.rows.append([_text(c) for c in cells])
        self.partial.append(partial)


def overview_table(docs: Sequence[dict]) -> Table:
    t = Table(["configuration", "status", "kind", "model", "target", "precision", "coder",
               "threads", "device", "images measured", "stopped by"])
    for doc, name in zip(docs, names(docs)):
        t.add([name, "complete" if doc["complete"] else PARTIAL, doc["kind"],
               doc["bundle"]["model"], doc.get("target"), doc.get("precision"), doc["coder"],
               doc.get("threads", None) or "default", _device_key(doc), doc["runs"]["measured"],
               doc["runs"]["stop"]], not doc["complete"])
    return t


def latency_table(docs: Sequence[dict]) -> Table:
    t = Table(["configuration", "stage", "n", "p50 ms", "p90 ms", "p99 ms", "mean ms", "max ms"])
    for doc, name in zip(docs, names(docs)):
        for stage in _stages(doc):
            s = doc["latency_ms"][stage]
            t.add([name, stage, _int(s["n"])] + [_fmt(s[k]) for k in
                                                 ("p50", "p90", "p99", "mean", "max")],
                  not doc["complete"])
    return t


def resources_table(docs: Sequence[dict]) -> Table:
    t = Table(["configuration", "throughput img/s", "CPU %", "peak RSS MB", "RSS growth MB"])
    for doc, name in zip(docs, names(docs)):
        memory = doc.get("memory") or {}
        t.add([name, _fmt(doc.get("throughput_ips")), _fmt(doc.get("cpu_percent")),
               _fmt(memory.get("peak_rss_mb")), _fmt(memory.get("rss_growth_mb"))],
              not doc["complete"])
    return t


def bytes_table(docs: Sequence[dict]) -> Table:
    t = Table(["configuration", "mean B", "p50 B", "p99 B", "min B", "max B", "latent shape",
               "bits / latent element", "bits / input pixel"])
    for doc, name in zip(docs, names(docs)):
        b = doc.get("bytes")
        if not b:
            continue
        latent = math.prod(doc["bundle"]["latent_shape"])
        h, w = doc["bundle"]["input_shape"][2:]
        t.add([name] + [_int(b[k]) for k in ("mean", "p50", "p99", "min", "max")] +
              ["×".join(map(str, doc["bundle"]["latent_shape"])),
               _fmt(8 * b["mean"] / latent) if latent else DASH,
               _fmt(8 * b["mean"] / (h * w)) if h * w else DASH], not doc["complete"])
    return t


def pareto_table(docs: Sequence[dict]) -> Table:
    """Every device result with its place relative to the bytes / device-latency front."""
    t = Table(["configuration", "target", "device p50 ms", "mean B", "J / image",
               "on the Pareto front"])
    device = [(d, n) for d, n in zip(docs, names(docs)) if d["kind"] == "device"]
    points = [(d["latency_ms"]["total"]["p50"], d["bytes"]["mean"]) for d, _ in device]
    front = set(pareto_front(points))
    order = sorted(range(len(device)), key=lambda i: (i not in front, points[i]))
    for i in order:
        doc, name = device[i]
        joules = _get(doc, "energy", "joules_per_image", "total")
        kind = _energy_kind(doc)
        t.add([name, doc.get("target"), _fmt(points[i][0]), _int(points[i][1]),
               _with(_fmt(joules), f" ({kind})") if joules is not None else DASH,
               "yes" if i in front else "no"], not doc["complete"])
    return t


def baselines_table(docs: Sequence[dict]) -> Table:
    t = Table(["baseline", "measured with", "mean B", "encode p50 ms", "link", "link ms"])
    for base, doc, name in _baselines(docs):
        t.add([base["name"], name, _int(base["bytes_mean"]), _fmt(base["encode_ms_p50"]),
               _get(doc, "link", "name") if base["link_ms"] is not None else None,
               _fmt(base["link_ms"])], not doc["complete"])
    return t


def _with(text: str, suffix: str) -> str:
    return text if text == DASH else text + suffix


def energy_table(docs: Sequence[dict]) -> Table:
    t = Table(["configuration", "energy", "J/image total", "J/image dynamic", "95 % CI (J)",
               "repeats", "mean W", "idle W", "radio J/image (link model)"])
    for doc, name in zip(docs, names(docs)):
        kind = _energy_kind(doc)
        j = _get(doc, "energy", "joules_per_image") or {}
        suffix = " (modeled)" if kind == "modeled" else ""
        ci = j.get("ci95")
        t.add([name, _energy_label(doc),
               f"{j['total']:.4g}{suffix}" if kind != "none" else DASH,
               f"{j['dynamic']:.4g}{suffix}" if kind != "none" and j.get("dynamic") is not None
               else DASH,
               f"{ci[0]:.4g} – {ci[1]:.4g}" if kind != "none" and ci else DASH,
               j.get("repeats") if kind != "none" else None,
               _with(_fmt(_get(doc, "energy", "mean_watts")), suffix),
               _with(_fmt(_get(doc, "energy", "idle_watts")), suffix),
               (f"{doc['link']['radio_joules_per_image']:.4g} (modeled)"
                if _get(doc, "link", "radio_joules_per_image") is not None else None)],
              not doc["complete"])
    return t


def end_to_end_table(docs: Sequence[dict]) -> Table:
    t = Table(["configuration", "device ms", "link", "link ms", "server ms", "total ms"])
    for bar in end_to_end_bars(docs):
        server_text = (f"{_fmt(bar.server)} ({bar.server_source})" if bar.has_server
                       else "0 (none given)")
        t.add([bar.name, _fmt(bar.device), bar.link_name or "no link",
               _fmt(bar.link) if bar.link_name else DASH, server_text,
               _fmt(bar.device + bar.link + bar.server)], bar.partial)
    return t


def _temps(doc: dict, when: str) -> Optional[str]:
    temps = _get(doc, "conditions", "temperatures_c", when)
    if not isinstance(temps, dict):
        return None
    values = [v for v in temps.values() if isinstance(v, (int, float))]
    return f"{max(values):.0f}" if values else None


def device_conditions_table(docs: Sequence[dict]) -> Table:
    t = Table(["configuration", "device model", "CPU", "machine", "cores", "governor",
               "nvpmodel", "jetson_clocks", "throttled", "max °C before → after", "hostname"])
    for doc, name in zip(docs, names(docs)):
        c = doc.get("conditions") or {}
        before, after = _temps(doc, "before"), _temps(doc, "after")
        t.add([name, c.get("device_model"), c.get("cpu"), c.get("machine"), c.get("cores"),
               c.get("governor"), c.get("nvpmodel"), c.get("jetson_clocks"), c.get("throttled"),
               f"{before or DASH} → {after or DASH}" if before or after else None,
               c.get("hostname")], not doc["complete"])
    return t


def run_conditions_table(docs: Sequence[dict]) -> Table:
    t = Table(["configuration", "runtime", "threads", "coder", "runs (warmup / measured / images)",
               "energy source", "energy detail", "link (source)", "server time from",
               "sc2deploy", "created (UTC)"])
    for doc, name in zip(docs, names(docs)):
        runs = doc["runs"]
        energy = doc.get("energy") or {}
        detail = energy.get("detail")
        rate = energy.get("sample_rate_hz")
        if rate:
            detail = f"{detail or ''}; {rate:.0f} Hz".lstrip("; ")
        link = doc.get("link")
        server = doc.get("server_ms")
        t.add([name, doc.get("runtime"), doc.get("threads") or "default", doc["coder"],
               f"{runs['warmup']} / {runs['measured']} / {runs['image_files']}",
               _energy_label(doc), detail,
               f"{link['name']} ({link['source']})" if link else None,
               f"{server['source']}: {server['from']}" if server else None,
               _get(doc, "conditions", "packages", "sc2deploy"), doc["created_utc"]],
              not doc["complete"])
    return t


# ---------------------------------------------------------------- CSV

def csv_rows(docs: Sequence[dict]) -> Tuple[List[str], List[Dict[str, object]]]:
    """Column names and one row per result (raw numbers, empty cells for missing values)."""
    stages = [s for s in _all_stages(docs) if s != "total"]
    columns = ["label", "kind", "target", "precision", "runtime", "coder", "threads",
               "device_model"]
    for s in stages:
        columns += [f"{s}_p50_ms", f"{s}_p99_ms"]
    columns += ["total_mean_ms", "total_p50_ms", "total_p99_ms", "throughput_ips",
                "bytes_mean", "bytes_p50", "bytes_p99", "energy_kind", "energy_source",
                "energy_j_per_image_total", "energy_j_per_image_dynamic",
                "energy_j_per_image_ci95_lo", "energy_j_per_image_ci95_hi", "link_name",
                "link_delay_ms_mean", "server_ms", "end_to_end_ms_total", "peak_rss_mb",
                "complete", "status"]
    rows = []
    for doc in docs:
        lat = doc["latency_ms"]
        energy = doc.get("energy") or {}
        j = energy.get("joules_per_image") or {}
        ci = j.get("ci95") or [None, None]
        row = {"label": doc["label"], "kind": doc["kind"], "target": doc.get("target"),
               "precision": doc.get("precision"), "runtime": doc.get("runtime"),
               "coder": doc["coder"], "threads": doc.get("threads"),
               "device_model": _get(doc, "conditions", "device_model")}
        for s in stages:
            row[f"{s}_p50_ms"] = _get(lat, s, "p50")
            row[f"{s}_p99_ms"] = _get(lat, s, "p99")
        row.update({
            "total_mean_ms": lat["total"]["mean"], "total_p50_ms": lat["total"]["p50"],
            "total_p99_ms": lat["total"]["p99"], "throughput_ips": doc.get("throughput_ips"),
            "bytes_mean": _get(doc, "bytes", "mean"), "bytes_p50": _get(doc, "bytes", "p50"),
            "bytes_p99": _get(doc, "bytes", "p99"),
            "energy_kind": energy.get("kind", "none") if j else "none",
            "energy_source": energy.get("source"), "energy_j_per_image_total": j.get("total"),
            "energy_j_per_image_dynamic": j.get("dynamic"), "energy_j_per_image_ci95_lo": ci[0],
            "energy_j_per_image_ci95_hi": ci[1], "link_name": _get(doc, "link", "name"),
            "link_delay_ms_mean": _get(doc, "link", "delay_ms", "mean"),
            "server_ms": _server_ms(doc),
            "end_to_end_ms_total": _get(doc, "end_to_end_ms", "total"),
            "peak_rss_mb": _get(doc, "memory", "peak_rss_mb"),
            "complete": "true" if doc["complete"] else "false",
            "status": "complete" if doc["complete"] else PARTIAL})
        rows.append({k: "" if v is None else v for k, v in row.items()})
    return columns, rows


def write_csv(docs: Sequence[dict], path: Union[str, Path]) -> Path:
    columns, rows = csv_rows(docs)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)


# ---------------------------------------------------------------- documents

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
              "not a measurement). Error bars: 95 % confidence interval over repeated windows; "
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
    modeled = [n for d, n in zip(docs, all_names) if _energy_kind(d) == "modeled"]
    if modeled:
        notes.append(f"Energy of {', '.join(modeled)} is modeled (time × a device power "
                     "profile), not measured; see the energy detail in the conditions.")
    missing = [n for d, n in zip(docs, all_names) if _energy_kind(d) == "none"]
    if missing:
        notes.append(f"{NO_ENERGY}: {', '.join(missing)}.")
    no_server = [b.name for b in end_to_end_bars(docs) if not b.baseline and not b.has_server]
    if no_server:
        notes.append(f"No server time given for {', '.join(no_server)}: end-to-end totals "
                     "count the server as 0 ms.")
    devices = sorted({_device_key(d) for d in docs})
    if len(devices) > 1:
        notes.append(f"Results come from {len(devices)} devices ({', '.join(devices)}): "
                     "compare across devices with their conditions in mind.")
    return notes


def _sections(docs: Sequence[dict]) -> List[Tuple[str, List[object]]]:
    """(title, blocks) where a block is a str paragraph, a Table or ("figure", key)."""
    device = [d for d in docs if d["kind"] == "device"]
    kinds = f"{len(device)} device, {len(docs) - len(device)} server"
    return [
        ("Overview", [f"{len(docs)} results ({kinds}).", ("notes",), overview_table(docs)]),
        ("End-to-end latency", [("figure", "end_to_end"), end_to_end_table(docs)]),
        ("Latency per stage", [("figure", "stages"), latency_table(docs),
                               resources_table(docs)]),
        ("Bytes per image", [("figure", "pareto"), "Pareto front across all results "
                             "(fewer bytes and lower device latency are better):",
                             pareto_table(docs), bytes_table(docs),
                             "Input-compression baselines (same images):",
                             baselines_table(docs)]),
        ("Energy per image", [("figure", "energy"), energy_table(docs)]),
        ("Conditions", ["Device:", device_conditions_table(docs), "Run and measurement:",
                        run_conditions_table(docs)]),
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
                out += [f"- **Note:** {n}" for n in _notes(docs)] + [""]
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
                out += [f'<p class="note"><b>Note:</b> {e(n)}</p>' for n in _notes(docs)]
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
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the report folder {out}: {exc}") from None
    drawers = {"end_to_end": plot_end_to_end, "stages": plot_stage_latency,
               "energy": plot_energy, "pareto": plot_bytes_latency}
    plots = {key: drawers[key](docs, out / PLOTS[key]) for key in PLOTS}
    (out / "report.md").write_text(render_markdown(docs), encoding="utf-8")
    write_csv(docs, out / "results.csv")
    html_path = out / "report.html"
    html_path.write_text(render_html(docs, plots), encoding="utf-8")
    return html_path
