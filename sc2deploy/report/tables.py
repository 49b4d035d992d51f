"""The report's tables (rows for Markdown and HTML) and its CSV."""

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from sc2deploy.report.data import (DASH, all_stages, baseline_rows, cell_text,
                                   device_key, dig, end_to_end_bars, energy_ci95,
                                   energy_kind_of, energy_label_of, fmt_int, fmt_num,
                                   host_timed_on, incomplete_tag, modeled_tag, names, radio_joules, ran_text,
                                   server_time_ms, spread, stage_names)
from sc2deploy.report.pareto import candidates, evaluation_row, front


@dataclass
class Table:
    """A table shared by the Markdown and HTML renderers (cells are plain text)."""

    headers: List[str]
    rows: List[List[str]] = field(default_factory=list)
    partial: List[bool] = field(default_factory=list)
    name: str = ""  # file stem of its LaTeX and CSV files

    def add(self, cells: Sequence, partial: bool = False) -> None:
        self.rows.append([cell_text(c) for c in cells])
        self.partial.append(partial)


def overview_table(docs: Sequence[dict]) -> Table:
    t = Table(["configuration", "status", "kind", "model", "target", "precision", "ran",
               "coder", "threads", "device", "images measured", "stopped by"], name="overview")
    for doc, name in zip(docs, names(docs)):
        t.add([name, "complete" if doc["complete"] else incomplete_tag(doc), doc["kind"],
               doc["bundle"]["model"], doc.get("target"), doc.get("precision"), ran_text(doc),
               doc.get("coder"),
               doc.get("threads", None) or "default", device_key(doc),
               dig(doc, "runs", "measured", default=doc.get("answered")),
               dig(doc, "runs", "stop")], not doc["complete"])
    return t


def latency_table(docs: Sequence[dict]) -> Table:
    t = Table(["configuration", "stage", "n", "p50 ms", "p90 ms", "p99 ms", "mean ms", "max ms"],
              name="latency")
    for doc, name in zip(docs, names(docs)):
        for stage in stage_names(doc):
            s = doc["latency_ms"][stage]
            t.add([name, stage, fmt_int(s["n"])] + [fmt_num(s[k]) for k in
                                                 ("p50", "p90", "p99", "mean", "max")],
                  not doc["complete"])
    return t


def resources_table(docs: Sequence[dict]) -> Table:
    t = Table(["configuration", "throughput img/s", "CPU %", "peak RSS MB", "RSS growth MB"],
              name="resources")
    for doc, name in zip(docs, names(docs)):
        memory = doc.get("memory") or {}
        t.add([name, fmt_num(doc.get("throughput_ips")), fmt_num(doc.get("cpu_percent")),
               fmt_num(memory.get("peak_rss_mb")), fmt_num(memory.get("rss_growth_mb"))],
              not doc["complete"])
    return t


def bytes_table(docs: Sequence[dict]) -> Table:
    t = Table(["configuration", "mean B", "p50 B", "p99 B", "min B", "max B", "latent shape",
               "bits / latent element", "bits / input pixel"], name="bytes")
    for doc, name in zip(docs, names(docs)):
        b = doc.get("bytes")
        if not b:
            continue
        latent = math.prod(doc["bundle"]["latent_shape"])
        h, w = doc["bundle"]["input_shape"][2:]
        t.add([name] + [fmt_int(b[k]) for k in ("mean", "p50", "p99", "min", "max")] +
              ["×".join(map(str, doc["bundle"]["latent_shape"])),
               fmt_num(8 * b["mean"] / latent) if latent else DASH,
               fmt_num(8 * b["mean"] / (h * w)) if h * w else DASH], not doc["complete"])
    return t


def pareto_table(docs: Sequence[dict], evaluations: Sequence[dict] = ()) -> Table:
    """Every device result that ran on its target's own runtime, with its place on the
    noise-aware Pareto front (report.pareto)."""
    t = Table(["configuration", "target", "mean B", "device p50 ms [IQR]",
               "J / image: compute + radio", "top-1 % [95 % CI]", "on the Pareto front"],
              name="pareto")
    device = candidates(docs)
    result = front([d for d, _ in device], evaluations)
    order = sorted(range(len(device)), key=lambda i: (not result.on_front[i],
                                                      device[i][0]["bytes"]["mean"]))
    for i in order:
        doc, name = device[i]
        joules = dig(doc, "energy", "joules_per_image", "total")
        kind = energy_kind_of(doc)
        tag = modeled_tag(doc) if kind == "modeled" else kind
        radio = radio_joules(doc)
        energy = (f"{fmt_num(joules)} ({tag})" if joules is not None else NO_COMPUTE) + (
            f" + {fmt_num(radio)} (modeled) = {fmt_num((joules or 0.0) + radio)}"
            if radio is not None else "")
        lo, p50, hi = spread(doc)
        row = evaluation_row(doc, evaluations)
        top1 = row["top1"] if row else None
        ties = [device[j][1] for j in result.ties[i]]
        place = ("yes" if result.on_front[i] else "no") + (
            f", tied with {', '.join(ties)}" if ties else "")
        t.add([name, doc.get("target"), _bytes_cell(doc, row, result.paired),
               f"{fmt_num(p50)} [{fmt_num(lo)}, {fmt_num(hi)}]",
               energy if joules is not None or radio is not None else DASH,
               _pct_ci(top1) if top1 else None, place], not doc["complete"])
    return t


NO_COMPUTE = "no compute energy"


def _bytes_cell(doc: dict, row: Optional[dict], paired: bool) -> str:
    """Mean bytes, named by the images they were measured on when two sets are in play."""
    profiled = f"{fmt_int(doc['bytes']['mean'])} (profile's images)"
    if row is None:
        return fmt_int(doc["bytes"]["mean"])
    evaluated = f"{fmt_int(row['bytes']['mean'])} (the {row['images']} evaluated images)"
    return f"{evaluated}; {profiled}" if paired else f"{profiled}; {evaluated}"


def baselines_table(docs: Sequence[dict]) -> Table:
    t = Table(["baseline", "measured with", "mean B", "encode p50 ms", "link", "link ms"],
              name="baselines")
    for base, doc, name in baseline_rows(docs):
        t.add([base["name"], name, fmt_int(base["bytes_mean"]), fmt_num(base["encode_ms_p50"]),
               dig(doc, "link", "name") if base["link_ms"] is not None else None,
               fmt_num(base["link_ms"])], not doc["complete"])
    return t


def _with(text: str, suffix: str) -> str:
    return text if text == DASH else text + suffix


def energy_table(docs: Sequence[dict]) -> Table:
    """Modeled numbers carry their tag in every cell and never a confidence interval."""
    t = Table(["configuration", "energy", "J/image total", "J/image dynamic",
               "95 % CI (J, measured only)", "repeats", "mean W", "idle W",
               "radio J/image (link model)"], name="energy")
    for doc, name in zip(docs, names(docs)):
        kind = energy_kind_of(doc)
        j = dig(doc, "energy", "joules_per_image") or {}
        suffix = f" ({modeled_tag(doc)})" if kind == "modeled" else ""
        watts_suffix = " (modeled)" if kind == "modeled" else ""  # the profile's, not timed
        ci = energy_ci95(doc)
        t.add([name, energy_label_of(doc),
               f"{j['total']:.4g}{suffix}" if kind != "none" else DASH,
               f"{j['dynamic']:.4g}{suffix}" if kind != "none" and j.get("dynamic") is not None
               else DASH,
               "none: modeled" if kind == "modeled" else
               f"{ci[0]:.4g} – {ci[1]:.4g}" if ci else DASH,
               j.get("repeats") if kind != "none" else None,
               _with(fmt_num(dig(doc, "energy", "mean_watts")), watts_suffix),
               _with(fmt_num(dig(doc, "energy", "idle_watts")), watts_suffix),
               (f"{doc['link']['radio_joules_per_image']:.4g} (modeled)"
                if dig(doc, "link", "radio_joules_per_image") is not None else None)],
              not doc["complete"])
    return t


def end_to_end_table(docs: Sequence[dict]) -> Table:
    bars = end_to_end_bars(docs)
    reply = any(b.reply is not None for b in bars)
    t = Table(["configuration", "breakdown", "device ms", "link", "link ms", "server ms"]
              + (["reply ms"] if reply else []) + ["total ms"], name="end_to_end")
    for bar in bars:
        server_text = (f"{fmt_num(bar.server)} ({bar.server_source})" if bar.has_server
                       else "0 (none given)")
        t.add([bar.name, "measured" if bar.measured else "modeled link",
               fmt_num(bar.device), bar.link_name or "no link",
               fmt_num(bar.link) if bar.link_name else DASH, server_text]
              + ([fmt_num(bar.reply)] if reply else [])
              + [fmt_num(bar.device + bar.link + bar.server + (bar.reply or 0.0))], bar.partial)
    return t


def _pct_ci(p: dict) -> str:
    lo, hi = p["ci95"]
    return f"{p['pct']:.1f} [{lo:.1f}, {hi:.1f}]"


def accuracy_table(docs: Sequence[dict]) -> Table:
    """One row per target of every evaluation document (``sc2deploy evaluate``)."""
    t = Table(["evaluation", "target", "precision", "ran", "images", "top-1 % [95 % CI]",
               "top-5 % [95 % CI]", "mean B / image", "top-1 = fp32 pipeline [95 % CI]"],
              name="accuracy")
    for doc, name in zip(docs, names(docs)):
        for r in doc["targets"]:
            a = r["top1_agreement"]
            ran = (r.get("executed") or {}).get("text", r["runtime"])
            t.add([name, r["target"], r["precision"], ran, r["images"], _pct_ci(r["top1"]),
                   _pct_ci(r["top5"]), fmt_int(r["bytes"]["mean"]),
                   f"{a['same']}/{r['images']} = {_pct_ci(a)} %"], not doc["complete"])
        for b in doc.get("baselines") or []:  # JPEG/WebP of the input, classified by the teacher
            t.add([name, f"{b['codec']} q{b['quality']} ({b.get('model', 'teacher')})", DASH,
                   DASH, b["images"], _pct_ci(b["top1"]), _pct_ci(b["top5"]),
                   fmt_int(b["bytes"]["mean"]), DASH], not doc["complete"])
    return t


def _temps(doc: dict, when: str) -> Optional[str]:
    temps = dig(doc, "conditions", "temperatures_c", when)
    if not isinstance(temps, dict):
        return None
    values = [v for v in temps.values() if isinstance(v, (int, float))]
    return f"{max(values):.0f}" if values else None


def _distinct(values) -> Optional[str]:
    """The different non-empty values, in order, joined by "; " (None if there are none)."""
    seen: List[str] = []
    for v in values:
        text = cell_text(v)
        if text != DASH and text not in seen:
            seen.append(text)
    return "; ".join(seen) or None


def _packages(docs: Sequence[dict]) -> Optional[str]:
    """"name version, ...": each package once, its different versions joined by " / "."""
    versions: Dict[str, List[str]] = {}
    for doc in docs:
        for name, version in dig(doc, "conditions", "packages", default={}).items():
            if version not in versions.setdefault(name, []):
                versions[name].append(version)
    return ", ".join(f"{k} {' / '.join(v)}" for k, v in versions.items()) or None


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")[:40] or "device"


def device_blocks(docs: Sequence[dict]) -> List[Tuple[str, Table]]:
    """One conditions block per device (not per row): what every run there shares, and the
    values that differed between runs joined by "; "."""
    devices: Dict[str, List[dict]] = {}
    for doc in docs:
        devices.setdefault(device_key(doc), []).append(doc)
    blocks = []
    for device, group in devices.items():
        t = Table(["condition", "value"], name=f"conditions_{_slug(device)}")
        temps = [f"{_temps(d, 'before') or DASH} → {_temps(d, 'after') or DASH}" for d in group
                 if _temps(d, "before") or _temps(d, "after")]
        details = []
        for d in group:
            detail, rate = dig(d, "energy", "detail"), dig(d, "energy", "sample_rate_hz")
            if detail:
                details.append(f"{energy_label_of(d)}: {detail}"
                               + (f" ({rate:.0f} Hz)" if rate else ""))
        links = [f"{d['link']['name']}: {d['link']['source']}" for d in group if d.get("link")]
        rows = [("results", ", ".join(n for d, n in zip(docs, names(docs)) if d in group))]
        rows += [(label, _distinct(dig(d, "conditions", key) for d in group)) for label, key in (
            ("device model", "device_model"), ("CPU", "cpu"), ("machine", "machine"),
            ("cores", "cores"), ("governor", "governor"), ("nvpmodel", "nvpmodel"),
            ("jetson_clocks", "jetson_clocks"), ("throttled", "throttled"),
            ("hostname", "hostname"), ("Python", "python"))]
        rows += [("max °C before → after", _distinct(temps)), ("packages", _packages(group)),
                 ("energy source", _distinct(details)), ("link model", _distinct(links))]
        for label, value in rows:
            if value is not None:
                t.add([label, value])
        blocks.append((device, t))
    return blocks


def run_conditions_table(docs: Sequence[dict]) -> Table:
    t = Table(["configuration", "device", "runtime", "threads", "coder",
               "runs (warmup / measured / images)", "energy", "link", "server time from",
               "created (UTC)"], name="runs")
    for doc, name in zip(docs, names(docs)):
        runs = doc.get("runs") or {"measured": doc.get("answered"),  # a stream: no warmup
                                    "image_files": doc.get("images")}
        server = doc.get("server_ms")
        t.add([name, device_key(doc), doc.get("runtime"), doc.get("threads") or "default",
               doc.get("coder"), " / ".join(cell_text(runs.get(k)) for k in
                                            ("warmup", "measured", "image_files")),
               energy_label_of(doc), dig(doc, "link", "name"),
               f"{server['source']}: {server['from']}" if server else None,
               doc["created_utc"]], not doc["complete"])
    return t


# ---------------------------------------------------------------- CSV

def csv_rows(docs: Sequence[dict]) -> Tuple[List[str], List[Dict[str, object]]]:
    """Column names and one row per result (raw numbers, empty cells for missing values)."""
    stages = [s for s in all_stages(docs) if s != "total"]
    columns = ["label", "kind", "target", "precision", "runtime", "executed", "coder",
               "threads", "device_model"]
    for s in stages:
        columns += [f"{s}_p50_ms", f"{s}_p99_ms"]
    columns += ["total_mean_ms", "total_p50_ms", "total_p99_ms", "throughput_ips",
                "bytes_mean", "bytes_p50", "bytes_p99", "energy_kind", "energy_source",
                "energy_label", "energy_host_timed_on", "energy_j_per_image_total",
                "energy_j_per_image_dynamic",
                "energy_j_per_image_ci95_lo", "energy_j_per_image_ci95_hi", "link_name",
                "link_delay_ms_mean", "server_ms", "end_to_end_ms_total", "peak_rss_mb",
                "complete", "status"]
    rows = []
    for doc in docs:
        lat = doc["latency_ms"]
        energy = doc.get("energy") or {}
        j = energy.get("joules_per_image") or {}
        ci = energy_ci95(doc) or [None, None]
        row = {"label": doc["label"], "kind": doc["kind"], "target": doc.get("target"),
               "precision": doc.get("precision"), "runtime": doc.get("runtime"),
               "executed": ran_text(doc), "coder": doc["coder"], "threads": doc.get("threads"),
               "device_model": dig(doc, "conditions", "device_model")}
        for s in stages:
            row[f"{s}_p50_ms"] = dig(lat, s, "p50")
            row[f"{s}_p99_ms"] = dig(lat, s, "p99")
        row.update({
            "total_mean_ms": lat["total"]["mean"], "total_p50_ms": lat["total"]["p50"],
            "total_p99_ms": lat["total"]["p99"], "throughput_ips": doc.get("throughput_ips"),
            "bytes_mean": dig(doc, "bytes", "mean"), "bytes_p50": dig(doc, "bytes", "p50"),
            "bytes_p99": dig(doc, "bytes", "p99"),
            "energy_kind": energy.get("kind", "none") if j else "none",
            "energy_source": energy.get("source"),
            "energy_label": energy_label_of(doc), "energy_host_timed_on": host_timed_on(doc),
            "energy_j_per_image_total": j.get("total"),
            "energy_j_per_image_dynamic": j.get("dynamic"), "energy_j_per_image_ci95_lo": ci[0],
            "energy_j_per_image_ci95_hi": ci[1], "link_name": dig(doc, "link", "name"),
            "link_delay_ms_mean": dig(doc, "link", "delay_ms", "mean"),
            "server_ms": server_time_ms(doc),
            "end_to_end_ms_total": dig(doc, "end_to_end_ms", "total"),
            "peak_rss_mb": dig(doc, "memory", "peak_rss_mb"),
            "complete": "true" if doc["complete"] else "false",
            "status": "complete" if doc["complete"] else incomplete_tag(doc)})
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
