"""The adaptive ladder in a report (issue 22): per image what the policy chose, what it
estimated and what happened, from an adaptive stream (``stream --ladder``, measured) or a
replay (``sc2deploy replay``, modeled); a summary table and the switching delays.

::

    stream doc ── predictions[].adaptive ──┐
                                           ├─ timeline() ─┬─ adaptive_table()
    replay doc ── images[], trace ─────────┘              └─ plot_adaptive() (adaptive_plot.py)
"""

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from sc2deploy.report.data import fmt_num, names
from sc2deploy.report.tables import Table


def is_adaptive(doc: dict) -> bool:
    return doc["kind"] == "replay" or (doc["kind"] == "stream" and bool(doc.get("adaptive")))


def adaptive_docs(docs: Sequence[dict]) -> List[Tuple[dict, str]]:
    """(document, display name) of every adaptive stream and replay."""
    return [(d, n) for d, n in zip(docs, names(docs)) if is_adaptive(d)]


@dataclass(frozen=True)
class Timeline:
    """One adaptive run, image by image (x: seconds for a replay, the send order for a
    stream, whose results keep no send times)."""

    name: str
    modeled: bool
    x: List[float]
    x_label: str
    points: List[str]  # the ladder, fewest bytes first
    chosen: List[str]
    estimate_bps: List[float]
    e2e_ms: List[float]
    predicted_ms: List[float]
    met: List[bool]
    deadline_ms: float
    measured_bps: List[Optional[float]]  # stream: 8 x bytes on the wire / transfer, per send
    trace: Optional[List[Tuple[float, float]]]  # replay: (t_start_s, bits/s), then the end
    duration_s: Optional[float]


def timeline(doc: dict, name: str) -> Timeline:
    a = doc["adaptive"]
    by_bytes = sorted(a["points"], key=lambda p: p.get("bytes", p.get("reference_bytes")))
    points = [p["name"] for p in by_bytes]
    if doc["kind"] == "replay":
        rows = doc["images"]
        return Timeline(name, True, [r["start_s"] for r in rows], "time (s)", points,
                        [r["point"] for r in rows], [r["estimate_bps"] for r in rows],
                        [r["e2e_ms"] for r in rows], [r["predicted_e2e_ms"] for r in rows],
                        [r["met"] for r in rows], a["deadline_ms"], [None] * len(rows),
                        [tuple(s) for s in doc["trace"]["segments"]], doc["trace"]["duration_s"])
    answered = [p for p in doc["predictions"] if "met" in p.get("adaptive", {})]
    rows = [p["adaptive"] for p in answered]
    measured = [8 * (p["bytes"] + a["overhead_bytes"]) / (r["transfer_ms"] / 1e3)
                if r.get("transfer_ms", 0) > 0 else None for p, r in zip(answered, rows)]
    return Timeline(name, False, list(range(len(rows))), "image (send order)", points,
                    [r["point"] for r in rows], [r["estimate_bps"] for r in rows],
                    [r["measured_e2e_ms"] for r in rows], [r["predicted_e2e_ms"] for r in rows],
                    [r["met"] for r in rows], a["deadline_ms"], measured, None, None)


def _switching_cost(doc: dict) -> str:
    if doc["kind"] != "replay":
        return "— (trace not recorded)"
    parts = []
    for s in doc["switching"]:
        delay = ("not reached" if s["delay_s"] is None else
                 f"{s['delay_s']:.2f} s, {s['delay_images']} image(s) before")
        parts.append(f"{s['t_change_s']:g} s {s['from_bps'] / 1e3:g}→{s['to_bps'] / 1e3:g} "
                     f"kbit/s: {s['fitting_point']} {delay}")
    return "; ".join(parts) or "no rate change"


def adaptive_table(docs: Sequence[dict]) -> Table:
    """Per adaptive run: deadline hit rate, the chosen points' mean top-1 (each point's
    evaluated top-1), switches and switching cost; a replay adds every fixed point."""
    t = Table(["result", "policy", "source", "deadline ms", "images", "deadline met",
               "mean top-1 %", "switches", "switching cost"], name="adaptive")
    for doc, name in adaptive_docs(docs):
        a, s = doc["adaptive"], doc["adaptive"]["summary"]
        source = "modeled" if doc["kind"] == "replay" else "measured"
        policy = ("adaptive" if a["mode"] == "deadline" else
                  f"adaptive (energy, top-1 ≥ {a['min_top1']:g} %)")
        t.add([name, policy, source, fmt_num(a["deadline_ms"]), s["images"],
               _hit(s), fmt_num(s["mean_top1"]), s["switches"], _switching_cost(doc)],
              not doc["complete"])
        for run in doc.get("fixed", []):
            f = run["summary"]
            t.add([name, f"{run['point']} alone", source, fmt_num(a["deadline_ms"]), f["images"],
                   _hit(f), fmt_num(f["mean_top1"]), f["switches"], None])
    return t


def _hit(summary: dict) -> Optional[str]:
    if summary["hit_rate"] is None:
        return None
    return f"{summary['met']}/{summary['images']} ({summary['hit_rate'] * 100:.1f} %)"


TEXT = ("Each adaptive run image by image: the ladder point chosen, the throughput estimate it "
        "was chosen with, and the end-to-end time against the deadline. Mean top-1 is the "
        "expected top-1 of the points sent (each point's evaluated top-1), not measured on the "
        "sent images. Switching cost (replays, whose trace is known): after each rate change, "
        "the time until the first image begun on the point that fits the new rate (chosen "
        "with the true rate, without hysteresis).")
