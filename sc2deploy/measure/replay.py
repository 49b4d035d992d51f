"""The adaptive policy on a modeled link (issue 22): a throughput trace, replayed (torch-free).

A trace is piecewise-constant bits/s (:func:`load_trace`, .json or .csv); :func:`replay`
runs :class:`~sc2deploy.measure.adaptive.Policy` on it next to every fixed ladder point,
each image taking encode + latency + the trace-integrated transfer + server time.
:func:`replay_ladder` (``sc2deploy replay``) does it for a ladder's bundles with their
``evaluate`` results (top-1, mean container bytes, ms) and makes its results document.
"""

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from sc2deploy.errors import UsageError
from sc2deploy.measure.adaptive import (Point, Policy, PolicyOptions, ThroughputEstimator,
                                        choose, choose_energy, finite, require_positive)
from sc2deploy.measure.energy_models import get_profile
from sc2deploy.measure.ladder import evaluated, load_evaluations, open_family, point_name
from sc2deploy.measure.links import load_link
from sc2deploy.options import option, validate
from sc2deploy.results.schema import SCHEMA, SCHEMA_VERSION, utc_now

Segment = Tuple[float, float]  # (t_start_s, bits_per_s): the rate from t_start_s to the next
TRACE_SUFFIXES = (".json", ".csv")
TRACE_COLUMNS = ("t_start_s", "bits_per_s")


def check_trace(segments: Sequence[Sequence[float]], where: str = "trace") -> List[Segment]:
    """The segments as (t_start_s, bits_per_s) floats; UsageError unless the first starts at
    0 s, times increase and rates are positive."""
    if not segments:
        raise UsageError(f"{where}: empty; expected (t_start_s, bits_per_s) segments, the "
                         "first at 0 s, e.g. [[0, 37500], [30, 5500]]")
    out: List[Segment] = []
    for k, seg in enumerate(segments):
        if not isinstance(seg, (list, tuple)) or len(seg) != 2 or not all(map(finite, seg)):
            raise UsageError(f"{where}: segment {k} is {seg!r}; expected two numbers "
                             "(t_start_s, bits_per_s)")
        t, bps = float(seg[0]), float(seg[1])
        if bps <= 0:
            raise UsageError(f"{where}: segment {k} has rate {bps:g} bit/s; rates must be > 0")
        if k == 0 and t != 0:
            raise UsageError(f"{where}: the first segment starts at {t:g} s; it must start at 0")
        if out and t <= out[-1][0]:
            raise UsageError(f"{where}: segment {k} starts at {t:g} s, not after the previous "
                             f"({out[-1][0]:g} s); start times must increase")
        out.append((t, bps))
    return out


def load_trace(path: Union[str, Path]) -> List[Segment]:
    """A throughput trace from .json (a list of [t_start_s, bits_per_s] pairs, or a mapping
    whose "segments" is one) or .csv (header ``t_start_s,bits_per_s``, a row per segment)."""
    path = Path(path)
    if path.suffix.lower() not in TRACE_SUFFIXES:
        raise UsageError(f"trace {path}: expected a .json or .csv file")
    if not path.is_file():
        raise UsageError(f"trace not found: {path}")
    text = path.read_text()
    if path.suffix.lower() == ".csv":
        return check_trace(_csv_rows(text, path), str(path))
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{path}: not valid JSON: {exc}") from None
    if isinstance(data, dict):
        data = data.get("segments")
    if not isinstance(data, list):
        raise UsageError(f"{path}: expected a list of [t_start_s, bits_per_s] pairs or a "
                         "mapping with \"segments\"")
    return check_trace(data, str(path))


def transfer_seconds(trace: Sequence[Segment], start_s: float, bits: float) -> float:
    """Seconds to send ``bits`` from ``start_s`` over the piecewise-constant rate (the last
    segment's rate holds forever)."""
    t, left = start_s, float(bits)
    for k, (_, bps) in enumerate(trace):
        end = trace[k + 1][0] if k + 1 < len(trace) else math.inf
        if end <= t:
            continue
        if left <= (end - t) * bps:
            return t + left / bps - start_s
        left -= (end - t) * bps
        t = end
    raise AssertionError("unreachable: the last segment never ends")


@dataclass(frozen=True)
class ImageRecord:
    """One modeled image: the point sent, the estimate it was chosen with, what happened."""

    index: int
    start_s: float
    point: str
    top1: float
    bytes: float
    fits: bool
    estimate_bps: float
    predicted_s: float
    actual_s: float
    met: bool


@dataclass(frozen=True)
class RunSummary:
    images: int
    hit_rate: float  # fraction of images answered within the deadline
    mean_top1: float  # expected top-1 (%): the mean of the sent points' accuracies
    switches: int  # images sent on another point than the one before


@dataclass(frozen=True)
class Run:
    records: Tuple[ImageRecord, ...]
    summary: RunSummary


@dataclass(frozen=True)
class Switch:
    """After a rate change: the point that fits the new rate (chosen with the true rate and
    no hysteresis) and how long until the adaptive policy began an image on it (None: not
    before the next change or the end)."""

    t_change_s: float
    from_bps: float
    to_bps: float
    fitting_point: str
    delay_s: Optional[float]
    delay_images: Optional[int]  # images begun after the change on other points


@dataclass(frozen=True)
class Replay:
    adaptive: Run
    fixed: Dict[str, Run]  # point name -> the same trace with only that point
    switching: Tuple[Switch, ...]

    def table(self) -> str:
        """Adaptive vs every fixed point, one line each, then the switching delays."""
        lines = [f"{'policy':<20} {'images':>6} {'deadline met':>12} {'mean top-1':>10} "
                 f"{'switches':>8}"]
        for name, run in [("adaptive", self.adaptive), *self.fixed.items()]:
            s = run.summary
            lines.append(f"{name:<20} {s.images:>6} {s.hit_rate:>11.1%} {s.mean_top1:>9.2f}% "
                         f"{s.switches:>8}")
        for sw in self.switching:
            delay = "not reached before the next change or the end" if sw.delay_s is None \
                else f"after {sw.delay_s:.2f} s ({sw.delay_images} image(s) on other points first)"
            lines.append(f"at {sw.t_change_s:g} s {sw.from_bps / 1e3:g} -> {sw.to_bps / 1e3:g} "
                         f"kbit/s: {sw.fitting_point} {delay}")
        return "\n".join(lines)


def replay(points: Sequence[Point], trace: Sequence[Sequence[float]],
           options: Union[float, PolicyOptions], *, duration_s: float,
           period_s: Optional[float] = None, prior_bps: Optional[float] = None) -> Replay:
    """Model the adaptive policy and every fixed point on ``trace`` for ``duration_s``.

    ``options``: PolicyOptions, or just the deadline in seconds. Images are begun back to
    back, or every ``period_s`` (later when the previous one is not answered yet, as
    ``stream --interval`` does); one takes encode + latency + trace-integrated transfer +
    server. The estimator's prior: ``prior_bps``, default the trace's first rate."""
    options = options if isinstance(options, PolicyOptions) else PolicyOptions(options)
    trace = check_trace(trace)
    require_positive("duration_s", duration_s, "seconds of trace to replay")
    if period_s is not None:
        require_positive("period_s", period_s, "seconds between images")
    model = (trace, options, duration_s, period_s, trace[0][1] if prior_bps is None else prior_bps)
    adaptive = _run(points, *model)
    fixed = {p.name: _run([p], *model) for p in points}
    return Replay(adaptive, fixed, _switching(points, trace, adaptive, options, duration_s))


def _run(points, trace, options: PolicyOptions, duration_s, period_s, prior_bps) -> Run:
    policy = Policy(points, ThroughputEstimator(prior_bps), options)
    records: List[ImageRecord] = []
    t = 0.0
    while t < duration_s:
        decision = policy.decide(len(records))
        point = decision.point
        link_s = options.latency_s + transfer_seconds(trace, t + point.encode_s, 8 * point.bytes)
        policy.observe(decision, point.bytes, link_s)
        actual = point.encode_s + link_s + point.server_s
        records.append(ImageRecord(len(records), t, point.name, point.top1, point.bytes,
                                   decision.fits, decision.throughput_bps,
                                   decision.predicted_s[point.name], actual,
                                   actual <= options.deadline_s))
        t = t + actual if period_s is None else max(t + period_s, t + actual)
    switches = sum(a.point != b.point for a, b in zip(records, records[1:]))
    summary = RunSummary(len(records), sum(r.met for r in records) / len(records),
                         sum(r.top1 for r in records) / len(records), switches)
    return Run(tuple(records), summary)


def _switching(points, trace, adaptive: Run, options: PolicyOptions, duration_s):
    switches = []
    for k in range(1, len(trace)):
        t_change, rate = trace[k]
        if t_change >= duration_s:
            break
        if options.top1_floor is None:
            fitting = choose(points, rate, options.deadline_s, latency_s=options.latency_s)
        else:
            fitting = choose_energy(points, rate, options.top1_floor, tx_watts=options.tx_watts)
        end = trace[k + 1][0] if k + 1 < len(trace) else math.inf
        after = [r for r in adaptive.records if t_change <= r.start_s < end]
        first = next((j for j, r in enumerate(after) if r.point == fitting.point.name), None)
        switches.append(Switch(t_change, trace[k - 1][1], rate, fitting.point.name,
                               None if first is None else after[first].start_s - t_change,
                               first))
    return tuple(switches)


def _csv_rows(text: str, path: Path) -> List[List[float]]:
    rows = [row for row in csv.reader(text.splitlines()) if any(c.strip() for c in row)]
    if not rows or tuple(c.strip() for c in rows[0]) != TRACE_COLUMNS:
        raise UsageError(f"{path}: the first row must be the header "
                         f"{','.join(TRACE_COLUMNS)}; got {rows[0] if rows else 'nothing'}")
    out = []
    for line, row in enumerate(rows[1:], 2):
        try:
            out.append([float(c) for c in row])
        except ValueError:
            raise UsageError(f"{path}: row {line} is {row!r}; expected two numbers "
                             f"({','.join(TRACE_COLUMNS)})") from None
    return out


def rate_at(trace: Sequence[Segment], t: float) -> float:
    """The trace's rate (bits/s) at ``t`` seconds."""
    return next(bps for start, bps in reversed(trace) if start <= t)


def default_duration_s(trace: Sequence[Segment]) -> float:
    """The trace's length when none is given: its last segment lasts as long as the one
    before it."""
    if len(trace) < 2:
        raise UsageError("a trace of one segment has no length: give --duration-s S")
    return trace[-1][0] + (trace[-1][0] - trace[-2][0])


ESTIMATOR = ("as stream --ladder's: exponentially weighted harmonic mean (alpha 0.3) of 8 x "
             "bytes / transfer seconds per image; a rate under half the estimate is taken at "
             "once, two in a row over twice it are taken at once")


@dataclass(frozen=True)
class ReplayOptions:
    """``sc2deploy replay``: the ladder, each point's `evaluate` results, the trace and how
    to choose (the deadline, or with ``min_top1`` the least device + radio energy)."""

    bundles: Tuple[Path, ...] = option(flag="--ladder", type=Path, nargs="+", required=True,
                                       metavar="BUNDLE",
                                       help="the points of one ladder (as `serve` holds them)")
    evaluations: Tuple[Path, ...] = option(  # each point's top-1, mean bytes and ms (``target``)
        flag="--evaluation", type=Path, nargs="+", required=True, metavar="RESULTS",
        help="`sc2deploy evaluate` results of every point: its top-1, mean container bytes and "
             "median device/server ms")
    trace: Path = option(flag="--trace", type=Path, required=True, metavar="TRACE.json|csv",
                         help="the link's rate over time: JSON [[t_start_s, bits_per_s], ...] or "
                              "CSV with the header t_start_s,bits_per_s")
    deadline_ms: float = option(flag="--deadline-ms", type=float, required=True, metavar="MS",
                                help="end to end per image")
    target: str = option("onnx", flag="--target", metavar="TARGET",
                         help="artifact that runs the head (default: {default})")
    min_top1: Optional[float] = option(
        None, flag="--min-top1", type=float, metavar="PCT",
        help="choose the least device + radio energy among points with top-1 >= PCT instead "
             "(needs --link and/or --device-profile)")
    link: Optional[str] = option(None, flag="--link", metavar="NAME|FILE",  # energy: TX power
                                 help="with --min-top1: the radio's TX power")
    device_profile: Optional[str] = option(  # energy mode: device watts x encode time
        None, flag="--device-profile", metavar="NAME",
        help="with --min-top1: device watts x each point's encode time (e.g. rpi4)")
    duration_s: Optional[float] = option(  # default: default_duration_s(trace)
        None, flag="--duration-s", type=float, metavar="S",
        help="seconds replayed (default: the last segment lasts as long as the one before it)")
    interval_ms: float = option(0.0, flag="--interval-ms", type=float, metavar="MS",
                                help="begin an image at most every MS (default: 0, back to back)")
    prior_kbps: Optional[float] = option(
        None, flag="--prior-kbps", type=float, metavar="K",
        help="the estimate before the first send (default: the trace's first rate)")
    latency_ms: float = option(0.0, flag="--latency-ms", type=float, metavar="MS",
                               help="the link's fixed delay per send (default: 0)")
    overhead_bytes: float = option(0.0, flag="--overhead-bytes", type=float, metavar="N",
                                   help="bytes every send carries besides the container, e.g. "
                                        "headers (default: 0)")
    label: Optional[str] = option(None, flag="--label", metavar="NAME", help="name in reports")

    def __post_init__(self):
        validate(self)
        require_positive("--deadline-ms", self.deadline_ms, "milliseconds per image, end to end")
        for name, value in (("--interval-ms", self.interval_ms),
                            ("--latency-ms", self.latency_ms),
                            ("--overhead-bytes", self.overhead_bytes)):
            if not finite(value) or value < 0:
                raise UsageError(f"{name} must be a number >= 0, got {value!r}")
        if self.duration_s is not None:
            require_positive("--duration-s", self.duration_s, "seconds of trace to replay")
        if self.prior_kbps is not None:
            require_positive("--prior-kbps", self.prior_kbps, "the link's expected kbit/s")
        if self.min_top1 is not None and not 0 <= self.min_top1 <= 100:
            raise UsageError(f"--min-top1 {self.min_top1}: expected a top-1 in percent, 0-100")
        if self.min_top1 is not None and self.link is None and self.device_profile is None:
            raise UsageError("--min-top1 (energy mode) needs what energy to count: --link "
                             "NAME|FILE (the radio's TX power x airtime), --device-profile "
                             "NAME (device watts x encode time), or both")


def replay_ladder(options: ReplayOptions) -> Tuple[Replay, dict]:
    """Replay the policy on the ladder's measured points; the result and its results
    document (kind ``replay``)."""
    created = utc_now()
    trace = load_trace(options.trace)
    bundles = open_family(options.bundles)
    evaluations = load_evaluations(options.evaluations)
    watts = get_profile(options.device_profile).active_watts if options.device_profile else None
    link = load_link(options.link) if options.link else None
    if options.min_top1 is not None and link is not None and link.tx_watts is None:
        raise UsageError(f"link {link.name} has no TX power (tx_watts) for the energy mode: "
                         "give a link model with one, or --device-profile alone")
    points, entries = [], []
    for bundle in bundles:
        entry = evaluated(bundle, evaluations, options.target)
        ms = entry.get("ms_p50") or {}
        encode_s = ms.get("device", 0.0) / 1e3
        point = Point(point_name(bundle, [p.name for p in points]), entry["top1"]["pct"],
                      entry["bytes"]["mean"] + options.overhead_bytes, encode_s,
                      ms.get("server", 0.0) / 1e3, None if watts is None else watts * encode_s)
        points.append(point)
        entries.append({"bundle": bundle.manifest["manifest_sha256"], "path": str(bundle.path),
                        "images": entry["images"]})
    duration = options.duration_s or default_duration_s(trace)
    policy = PolicyOptions(options.deadline_ms / 1e3, latency_s=options.latency_ms / 1e3,
                           top1_floor=options.min_top1,
                           tx_watts=link.tx_watts if link and options.min_top1 is not None
                           else None)
    period = options.interval_ms / 1e3 or None
    prior = options.prior_kbps * 1e3 if options.prior_kbps else None
    result = replay(points, trace, policy, duration_s=duration, period_s=period, prior_bps=prior)
    label = options.label or f"ladder {points[0].name}..{points[-1].name}/{options.target}/replay"
    doc = document(result, trace, points, policy, label=label, created_utc=created,
                   duration_s=duration, period_s=period, source=str(options.trace),
                   prior_bps=prior, overhead_bytes=options.overhead_bytes, entries=entries,
                   target=options.target, device_profile=options.device_profile,
                   link=link.name if link else None)
    return result, doc


def document(result: Replay, trace: Sequence[Segment], points: Sequence[Point],
             options: PolicyOptions, *, label: str, created_utc: str, duration_s: float,
             period_s: Optional[float] = None, source: Optional[str] = None,
             prior_bps: Optional[float] = None, overhead_bytes: float = 0.0,
             entries: Optional[Sequence[dict]] = None, target: Optional[str] = None,
             device_profile: Optional[str] = None, link: Optional[str] = None) -> dict:
    """The replay as a results document (kind ``replay``, docs/results.md): the trace, the
    policy's options, the points, per image the adaptive run's choices and outcomes, every
    run's summary and the switching delays."""
    entries = entries or [{} for _ in points]

    def summary(run: Run) -> dict:
        s = run.summary
        return {"images": s.images, "met": sum(r.met for r in run.records),
                "hit_rate": s.hit_rate, "mean_top1": s.mean_top1, "switches": s.switches}

    images = [{"index": r.index, "start_s": r.start_s, "point": r.point, "fits": r.fits,
               "estimate_bps": r.estimate_bps, "true_bps": rate_at(trace, r.start_s),
               "predicted_e2e_ms": r.predicted_s * 1e3, "e2e_ms": r.actual_s * 1e3,
               "met": r.met} for r in result.adaptive.records]
    return {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "kind": "replay", "complete": True,
        "label": label, "created_utc": created_utc, "target": target,
        "trace": {"source": source, "segments": [[t, bps] for t, bps in trace],
                  "duration_s": duration_s},
        "adaptive": {
            "mode": "deadline" if options.top1_floor is None else "energy",
            "deadline_ms": options.deadline_s * 1e3, "min_top1": options.top1_floor,
            "hysteresis": options.hysteresis, "latency_ms": options.latency_s * 1e3,
            "prior_bps": trace[0][1] if prior_bps is None else prior_bps,
            "estimator": ESTIMATOR, "period_s": period_s, "overhead_bytes": overhead_bytes,
            "tx_watts": options.tx_watts, "device_profile": device_profile, "link": link,
            "points": [{"name": p.name, "bundle": e.get("bundle"), "path": e.get("path"),
                        "top1": p.top1, "bytes": p.bytes - overhead_bytes,
                        "encode_ms": p.encode_s * 1e3, "server_ms": p.server_s * 1e3,
                        "energy_j": p.energy_j} for p, e in zip(points, entries)],
            "summary": summary(result.adaptive)},
        "images": images,
        "fixed": [{"point": name, "summary": summary(run)} for name, run in result.fixed.items()],
        "switching": [{"t_change_s": s.t_change_s, "from_bps": s.from_bps, "to_bps": s.to_bps,
                       "fitting_point": s.fitting_point, "delay_s": s.delay_s,
                       "delay_images": s.delay_images} for s in result.switching]}


def format_header(doc: dict) -> str:
    """What was modeled, in one line per part: the trace, the rule, the points."""
    a, trace = doc["adaptive"], doc["trace"]
    rates = " -> ".join(f"{bps / 1e3:g}" for _, bps in trace["segments"])
    starts = ", ".join(f"{t:g}" for t, _ in trace["segments"])
    rule = (f"the most accurate point within {a['deadline_ms']:g} ms end to end"
            if a["mode"] == "deadline" else
            f"the least energy with top-1 >= {a['min_top1']:g} % (deadline {a['deadline_ms']:g} ms "
            "counted)")
    pace = "back to back" if a["period_s"] is None else f"one every {a['period_s'] * 1e3:g} ms"
    points = "; ".join(f"{p['name']} {p['top1']:.1f} % {p['bytes']:,.0f} B "
                       f"{p['encode_ms']:.1f}+{p['server_ms']:.1f} ms" for p in a["points"])
    return (f"modeled: {rates} kbit/s from {starts} s, {trace['duration_s']:g} s, images {pace}; "
            f"latency {a['latency_ms']:g} ms, overhead {a['overhead_bytes']:g} B per send\n"
            f"policy: {rule}\npoints (top-1, mean bytes, device+server ms): {points}")
