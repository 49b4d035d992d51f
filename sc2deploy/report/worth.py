"""Worth deploying: a student's curve against JPEG/WebP at equal accuracy.

From ``evaluate`` documents on the same images (one per ladder point; the teacher's JPEG/WebP
baselines in any of them), each pipeline is a curve of operating points: a student target
has one per evaluated bundle, JPEG and WebP one per quality. For a quantity Q and a top-1
floor A::

    Q(A) = the least Q at which the curve reaches top-1 >= A. The curve's points sorted by Q
           are kept where their top-1 beats every point of smaller Q (the upper envelope);
           between the two envelope points that bracket A, Q is interpolated linearly in
           top-1 (bytes: log-linearly). None when no point reaches A.

Quantities: bytes per image; end to end = device ms + link delay (bytes) + server ms; device
+ radio energy = the device profile's active watts x device ms + the link's TX watts x airtime.
Device and server times are the medians ``evaluate`` timed on the machine that ran it (head
and range coder, or the image encoder; decoding and the tail, or the teacher); the links are
models (sc2deploy.measure.links) and so is the device energy ("modeled, host-timed").
The other way round, a student's smallest point is set against the best top-1 a baseline
reaches with at most as many bytes (interpolated the same way, None below its smallest).
"""

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from sc2deploy.measure.energy_models import get_profile
from sc2deploy.measure.links import Link, load_link
from sc2deploy.report.data import names

LINKS = ("lora-sx1276-20dbm", "wifi-80211n")
DEVICE_PROFILE = "rpi4"
FLOOR_BELOW_TEACHER = 2.0  # default floor: the teacher's uncompressed top-1 minus 2 points
RULE = ("least value reaching the floor on each curve's upper envelope, linear in top-1 "
        "between the two points that bracket it (bytes: log-linear)")


@dataclass(frozen=True)
class Operating:
    """One operating point of a pipeline."""

    name: str  # the evaluation's name (a ladder point) or the quality (q25)
    bytes: float  # mean per image
    top1: float  # percent
    device_ms: Optional[float]
    server_ms: Optional[float]


def curves(evaluations: Sequence[dict]) -> Tuple[Dict[str, List[Operating]],
                                                 Dict[str, List[Operating]]]:
    """(student curves by "model / target", baseline curves by codec)."""
    students: Dict[str, List[Operating]] = {}
    baselines: Dict[str, Dict[int, Operating]] = {}
    for doc, name in zip(evaluations, names(evaluations)):
        for row in doc["targets"]:
            ms = row.get("ms_p50") or {}
            students.setdefault(f"{doc['bundle']['model']} / {row['target']}", []).append(
                Operating(name, row["bytes"]["mean"], row["top1"]["pct"], ms.get("device"),
                          ms.get("server")))
        for row in doc.get("baselines") or []:
            ms = row.get("ms_p50") or {}
            baselines.setdefault(row["codec"], {}).setdefault(row["quality"], Operating(
                f"q{row['quality']}", row["bytes"]["mean"], row["top1"]["pct"],
                ms.get("device"), ms.get("server")))
    return students, {c: list(q.values()) for c, q in baselines.items()}


def _envelope(points: Sequence[Tuple[float, float]]) -> List[Tuple[float, float]]:
    env: List[Tuple[float, float]] = []
    for value, top1 in sorted(points):
        if not env or top1 > env[-1][1]:
            env.append((value, top1))
    return env


def least_at(points: Sequence[Tuple[Optional[float], float]], floor: float,
             log: bool = False) -> Optional[float]:
    """The least value of (value, top-1) ``points`` that reaches top-1 >= ``floor``."""
    env = _envelope([(v, a) for v, a in points if v is not None])
    for j, (value, top1) in enumerate(env):
        if top1 >= floor:
            if j == 0:
                return value
            (v0, a0), f = env[j - 1], (floor - env[j - 1][1]) / (top1 - env[j - 1][1])
            if log:
                return math.exp(math.log(v0) + f * (math.log(value) - math.log(v0)))
            return v0 + f * (value - v0)
    return None


def best_top1_within(points: Sequence[Tuple[float, float]], budget: float) -> Optional[float]:
    """The best top-1 of (value, top-1) ``points`` with value <= ``budget`` (log-linear
    between envelope points); None when even the smallest point needs more."""
    env = _envelope(points)
    if not env or budget < env[0][0]:
        return None
    for (v0, a0), (v1, a1) in zip(env, env[1:]):
        if v0 <= budget < v1:
            return a0 + (a1 - a0) * (math.log(budget) - math.log(v0)) / (
                math.log(v1) - math.log(v0))
    return env[-1][1]


def _value(op: Operating, quantity: str, link: Optional[Link], watts: float) -> Optional[float]:
    if quantity == "bytes":
        return op.bytes
    if op.device_ms is None or op.server_ms is None:
        return None
    nbytes = int(round(op.bytes))
    if quantity == "e2e_ms":
        return op.device_ms + link.delay_ms(nbytes) + op.server_ms
    radio = link.radio_joules(nbytes)
    return None if radio is None else watts * op.device_ms / 1e3 + radio


QUANTITIES = (("bytes", "bytes per image"), ("e2e_ms", "end to end, ms"),
              ("joules", "device + radio energy, J"))


def teacher_top1(evaluations: Sequence[dict]) -> Optional[float]:
    return next((d["teacher"]["top1"]["pct"] for d in evaluations if d.get("teacher")), None)


def compare(evaluations: Sequence[dict], floor: Optional[float] = None,
            links: Sequence[str] = LINKS, device_profile: str = DEVICE_PROFILE) -> Optional[dict]:
    """The comparison at top-1 >= ``floor`` (default: the teacher's minus 2 points); None
    without both a student and a baseline."""
    students, baselines = curves(evaluations)
    teacher = teacher_top1(evaluations)
    if not students or not baselines or (floor is None and teacher is None):
        return None
    floor = teacher - FLOOR_BELOW_TEACHER if floor is None else float(floor)
    watts = get_profile(device_profile).active_watts
    rows = []
    timed = all(o.device_ms is not None and o.server_ms is not None
                for ops in (*students.values(), *baselines.values()) for o in ops)
    for pipeline, points in students.items():
        for quantity, _ in QUANTITIES if timed else QUANTITIES[:1]:  # times: evaluate's
            for link_name in ([None] if quantity == "bytes" else links):
                link = None if link_name is None else load_link(link_name)

                def at(ops: Sequence[Operating]) -> Optional[float]:
                    return least_at([(_value(o, quantity, link, watts), o.top1) for o in ops],
                                    floor, log=quantity == "bytes")

                base = {codec: at(ops) for codec, ops in baselines.items()}
                reached = {c: v for c, v in base.items() if v is not None}
                best = min(reached, key=reached.get) if reached else None
                mine = at(points)
                rows.append({"pipeline": pipeline, "quantity": quantity, "link": link_name,
                             "student": mine, "baselines": base, "best_baseline": best,
                             "ratio": (mine / reached[best] if mine is not None and best
                                       else None)})
    smallest = []
    for pipeline, points in students.items():
        low = min(points, key=lambda o: o.bytes)
        reach = {c: best_top1_within([(o.bytes, o.top1) for o in ops], low.bytes)
                 for c, ops in baselines.items()}
        smallest.append({"pipeline": pipeline, "point": low.name, "bytes": low.bytes,
                         "top1": low.top1, "baselines": reach,
                         "baseline_smallest": {c: min(o.bytes for o in ops)
                                               for c, ops in baselines.items()}})
    return {"floor": floor, "teacher_top1": teacher, "rule": RULE, "links": list(links),
            "images": sorted({d["dataset"]["images"] for d in evaluations}),
            "device_profile": device_profile, "rows": rows, "smallest": smallest}


def verdict(ratio: Optional[float], student: Optional[float], best: Optional[str]) -> str:
    """Plain words for one comparison row."""
    if student is None:
        return "the student never reaches the floor"
    if best is None:
        return "no baseline reaches the floor"
    if ratio >= 1:
        return f"no gain: dominated by {best}"
    return f"{1 / ratio:.1f}x less than {best}"


def value_text(value: Optional[float], quantity: str) -> str:
    """A value with its unit ("—" for None)."""
    if value is None:
        return "—"
    if quantity == "bytes":
        return f"{value:,.0f} B"
    if quantity == "e2e_ms":
        return f"{value:,.0f} ms" if value >= 10 else f"{value:.2f} ms"
    return f"{value:.3g} J"


def comparison_rows(doc: dict, pipeline: Optional[str] = None) -> List[List[str]]:
    """[what, link, student, best baseline, ratio, verdict] cells."""
    out = []
    for row in doc["rows"]:
        if pipeline is not None and row["pipeline"] != pipeline:
            continue
        q = row["quantity"]
        best = row["best_baseline"]
        out.append([row["pipeline"], dict(QUANTITIES)[q], row["link"] or "—",
                    value_text(row["student"], q),
                    f"{best} {value_text(row['baselines'][best], q)}" if best else "none reaches it",
                    "—" if row["ratio"] is None else f"{row['ratio']:.2f}",
                    verdict(row["ratio"], row["student"], best)])
    return out


def smallest_text(entry: dict) -> str:
    reach = {c: a for c, a in entry["baselines"].items() if a is not None}
    if reach:
        best = max(reach, key=reach.get)
        other = (f"the best baseline there, {best}, reaches {reach[best]:.1f} %"
                 + (" (the student is ahead)" if entry["top1"] >= reach[best]
                    else " (the baseline is ahead)"))
    else:
        smallest = ", ".join(f"{c} {b:,.0f} B" for c, b in entry["baseline_smallest"].items())
        other = f"no baseline gets this small (their smallest: {smallest})"
    return (f"smallest point {entry['point']} ({entry['pipeline']}): {entry['bytes']:,.0f} B at "
            f"top-1 {entry['top1']:.1f} %; {other}")


def format_comparison(doc: Optional[dict], pipeline: Optional[str] = None) -> str:
    """The printed comparison (``pipeline``: one student curve only)."""
    if doc is None:
        return "worth deploying: needs evaluations with a student and the JPEG/WebP baselines"
    head = (f"worth deploying, at top-1 >= {doc['floor']:.1f} %"
            + (f" (teacher uncompressed {doc['teacher_top1']:.1f} % - "
               f"{FLOOR_BELOW_TEACHER:g} points)" if doc["teacher_top1"] is not None else "")
            + f"; {'/'.join(map(str, doc['images']))} labeled images; the least each curve "
            f"needs ({doc['rule']}); times: evaluate's medians on this machine; energy modeled "
            f"({doc['device_profile']} profile x host time, link TX power x airtime):")
    lines = [head]
    for cells in comparison_rows(doc, pipeline):
        where = "" if cells[2] == "—" else f" over {cells[2]}"
        lines.append(f"  {cells[0]}, {cells[1]}{where}: {cells[3]} vs {cells[4]}"
                     f" -> ratio {cells[5]} ({cells[6]})")
    for entry in doc["smallest"]:
        if pipeline is None or entry["pipeline"] == pipeline:
            lines.append("  " + smallest_text(entry))
    return "\n".join(lines)
