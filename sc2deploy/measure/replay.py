"""The adaptive policy on a modeled link (issue 22): a throughput trace, replayed (torch-free).

A trace is piecewise-constant bits/s (:func:`load_trace`, .json or .csv); :func:`replay`
runs :class:`~sc2deploy.measure.adaptive.Policy` on it next to every fixed ladder point,
each image taking encode + latency + the trace-integrated transfer + server time.
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
            delay = "never" if sw.delay_s is None else \
                f"{sw.delay_s:.2f} s ({sw.delay_images} image(s) on other points first)"
            lines.append(f"at {sw.t_change_s:g} s {sw.from_bps / 1e3:g} -> {sw.to_bps / 1e3:g} "
                         f"kbit/s: {sw.fitting_point} after {delay}")
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
