"""Adapt to the link (issue 22): per image, the β-ladder point that meets a deadline (torch-free).

A LoRa link's throughput changes tenfold with its spreading factor; the device knows its
ladder (:class:`Point`: top-1, bytes, encode and server seconds) and learns the rate from
its own sends::

    ThroughputEstimator ── bits/s ──┐
    BytePredictor ── bytes/point ───┼─▶ choose() ─▶ Decision ─▶ encode, send ─┐
    deadline, hysteresis ───────────┘                                          │
            ▲────────────── Policy.observe(bytes sent, seconds) ◀──────────────┘

    predicted end to end = encode + latency + 8 x bytes / throughput + server

:func:`sc2deploy.measure.replay.replay` runs the policy on a modeled throughput trace.
"""

import math
from collections import deque
from dataclasses import dataclass
from typing import Deque, Dict, List, Mapping, Optional, Sequence

from sc2deploy.errors import UsageError
from sc2deploy.log import logger
from sc2deploy.measure.links import Link



class ThroughputEstimator:
    """The link's throughput from the device's own completed sends.

    Each send gives r = 8 x bytes / seconds. The estimate R is an exponentially weighted
    harmonic mean, 1/R <- (1 - alpha)/R + alpha/r (it averages seconds per bit, so a lucky
    fast send moves it little), with two fast paths:

    * drop: r < drop x R sets R <- r at once (a slower link is noticed after one image);
    * rise: ``confirm`` sends in a row with r > rise x R set R <- their harmonic mean (one
      fast send alone may be luck; switching up on it risks a missed deadline).

    Before any send R is the prior: the caller's, or the link profile's (:meth:`from_link`).
    """

    def __init__(self, prior_bps: float, alpha: float = 0.3, drop: float = 0.5,
                 rise: float = 2.0, confirm: int = 2):
        require_positive("prior_bps", prior_bps, "the link's expected bits per second")
        if not (0 < alpha <= 1 and 0 < drop < 1 and rise > 1 and confirm >= 1):
            raise UsageError(f"throughput estimator: expected 0 < alpha <= 1, 0 < drop < 1, "
                             f"rise > 1, confirm >= 1; got alpha={alpha}, drop={drop}, "
                             f"rise={rise}, confirm={confirm}")
        self.bps = float(prior_bps)
        self.alpha, self.drop, self.rise, self.confirm = alpha, drop, rise, confirm
        self.observed = 0
        self.dropped = False  # the last send took the drop path
        self._rises: List[float] = []

    @classmethod
    def from_link(cls, link: Link, nbytes: int, **kwargs) -> "ThroughputEstimator":
        """Prior: the rate at which ``link`` delivers ``nbytes`` (framing, expected resends
        and duty-cycle silences included, as the device's own sends will measure it)."""
        return cls(8 * nbytes / (link.delay_ms(nbytes) / 1e3), **kwargs)

    def observe(self, nbytes: float, seconds: float) -> float:
        """Take one completed send; returns the new estimate (bits per second)."""
        if not nbytes > 0 or not seconds > 0:
            raise UsageError(f"a send needs bytes > 0 and seconds > 0, got {nbytes} B in "
                             f"{seconds} s")
        rate = 8 * nbytes / seconds
        self.observed += 1
        self.dropped = rate < self.drop * self.bps
        if self.dropped:
            self.bps, self._rises = rate, []
            return self.bps
        self._rises = self._rises + [rate] if rate > self.rise * self.bps else []
        if len(self._rises) >= self.confirm:
            self.bps = len(self._rises) / sum(1 / r for r in self._rises)
            self._rises = []
        else:
            self.bps = 1 / ((1 - self.alpha) / self.bps + self.alpha / rate)
        return self.bps


class BytePredictor:
    """Each point's next container size: the mean of its last ``recent`` containers, or its
    reference bytes before it has sent any. A point not in use keeps its last estimate."""

    def __init__(self, reference: Mapping[str, float], recent: int = 4):
        if recent < 1:
            raise UsageError(f"recent must be >= 1 containers per point, got {recent}")
        self.reference = dict(reference)
        self._recent: Dict[str, Deque[float]] = {n: deque(maxlen=recent) for n in reference}

    def observe(self, name: str, nbytes: float) -> None:
        self._sizes(name).append(float(nbytes))

    def predict(self, name: str) -> float:
        sizes = self._sizes(name)
        return sum(sizes) / len(sizes) if sizes else float(self.reference[name])

    def predictions(self) -> Dict[str, float]:
        return {name: self.predict(name) for name in self.reference}

    def _sizes(self, name: str) -> Deque[float]:
        if name not in self._recent:
            raise UsageError(f"unknown ladder point {name!r}; known: {', '.join(self._recent)}")
        return self._recent[name]


@dataclass(frozen=True)
class Point:
    """One ladder point as the policy sees it: top-1 (%), reference bytes per image, the
    device's encode and the server's seconds per image, the device's joules per image."""

    name: str
    top1: float
    bytes: float
    encode_s: float
    server_s: float
    energy_j: Optional[float] = None

    def __post_init__(self):
        if not 0 <= self.top1 <= 100 or not self.bytes > 0 or self.encode_s < 0 \
                or self.server_s < 0 or (self.energy_j is not None and self.energy_j < 0):
            raise UsageError(f"invalid ladder point {self}: expected top1 in [0, 100] (%), "
                             "bytes > 0, encode_s, server_s and energy_j >= 0")


@dataclass(frozen=True)
class Choice:
    """The point to send; ``fits`` False: none meets the deadline (energy mode: none reaches
    the top-1 floor)."""

    point: Point
    fits: bool
    reason: str


def end_to_end_s(point: Point, nbytes: float, throughput_bps: float,
                 latency_s: float = 0.0) -> float:
    """Predicted seconds from encode start to the server's answer."""
    return point.encode_s + latency_s + 8 * nbytes / throughput_bps + point.server_s


def choose(points: Sequence[Point], throughput_bps: float, deadline_s: float, *,
           latency_s: float = 0.0, nbytes: Optional[Mapping[str, float]] = None,
           current: Optional[Point] = None, hysteresis: float = 0.1) -> Choice:
    """The most accurate point whose predicted end to end meets ``deadline_s``.

    From ``current`` it moves up to a more accurate point only with a margin (predicted
    <= (1 - hysteresis) x deadline) and down as soon as ``current`` would miss; none fits:
    the fewest bytes. ``nbytes``: predicted bytes per point name (default: reference)."""
    _check_points(points)
    sizes = {p.name: (nbytes or {}).get(p.name, p.bytes) for p in points}
    times = {p.name: end_to_end_s(p, sizes[p.name], throughput_bps, latency_s) for p in points}
    fitting = [p for p in points if times[p.name] <= deadline_s]
    if not fitting:
        smallest = min(points, key=lambda p: (sizes[p.name], -p.top1))
        return Choice(smallest, False, f"none fits: {smallest.name} (fewest bytes) takes "
                      f"{times[smallest.name] * 1e3:.0f} ms > {deadline_s * 1e3:.0f} ms")
    current = current if current is not None and current.name in times else None
    if current is not None and times[current.name] <= deadline_s:
        margin = (1 - hysteresis) * deadline_s
        better = [p for p in fitting if p.top1 > current.top1 and times[p.name] <= margin]
        if not better:
            return Choice(current, True, f"kept {current.name}: no more accurate point within "
                          f"{margin * 1e3:.0f} ms")
        up = _most_accurate(better)
        return Choice(up, True, f"up to {up.name}: {times[up.name] * 1e3:.0f} ms <= "
                      f"{margin * 1e3:.0f} ms")
    best = _most_accurate(fitting)
    if current is None:
        return Choice(best, True, f"{best.name}: the most accurate within the deadline")
    return Choice(best, True, f"down to {best.name}: {current.name} would take "
                  f"{times[current.name] * 1e3:.0f} ms > {deadline_s * 1e3:.0f} ms")


def predicted_joules(points: Sequence[Point], throughput_bps: float,
                     tx_watts: Optional[float], nbytes: Optional[Mapping[str, float]] = None
                     ) -> Dict[str, float]:
    """Device + radio joules per point; radio = TX power x airtime, airtime taken as
    8 x bytes / throughput (a link with silences, e.g. a duty cycle, overstates it)."""
    with_energy = [p.name for p in points if p.energy_j is not None]
    if 0 < len(with_energy) < len(points) or (not with_energy and tx_watts is None):
        raise UsageError(f"energy mode needs every point's device energy_j (given for "
                         f"{with_energy or 'none'}) or the link's TX power (tx_watts), or both")
    radio = tx_watts or 0.0
    return {p.name: (p.energy_j or 0.0)
            + radio * 8 * (nbytes or {}).get(p.name, p.bytes) / throughput_bps for p in points}


def choose_energy(points: Sequence[Point], throughput_bps: float, top1_floor: float, *,
                  tx_watts: Optional[float] = None,
                  nbytes: Optional[Mapping[str, float]] = None) -> Choice:
    """The least predicted device + radio energy among points with top-1 >= ``top1_floor``;
    none reaches it: the most accurate, ``fits`` False."""
    _check_points(points)
    joules = predicted_joules(points, throughput_bps, tx_watts, nbytes)
    eligible = [p for p in points if p.top1 >= top1_floor]
    if not eligible:
        best = _most_accurate(points)
        return Choice(best, False, f"no point reaches top-1 {top1_floor:g} %: {best.name}, "
                      f"the most accurate ({best.top1:g} %)")
    least = min(eligible, key=lambda p: (joules[p.name], -p.top1))
    return Choice(least, True, f"{least.name}: least energy ({joules[least.name]:.4f} J) "
                  f"with top-1 >= {top1_floor:g} %")


@dataclass(frozen=True)
class PolicyOptions:
    """How the policy chooses: the deadline (with hysteresis), or, with ``top1_floor``
    set, the least energy (device + ``tx_watts`` x airtime) above that floor."""

    deadline_s: float
    hysteresis: float = 0.1  # move up only when predicted <= (1 - hysteresis) x deadline
    latency_s: float = 0.0  # the link's fixed delay per send, on top of bytes / throughput
    recent: int = 4  # containers per point the byte predictor averages
    top1_floor: Optional[float] = None  # set: energy mode (%)
    tx_watts: Optional[float] = None  # the radio's TX power (links.Link.tx_watts)
    settle: int = 1  # images sent on the fewest-bytes point after a drop that made one late

    def __post_init__(self):
        require_positive("deadline_s", self.deadline_s, "seconds per image")
        if not 0 <= self.hysteresis < 1 or self.latency_s < 0 or self.recent < 1 \
                or (self.tx_watts is not None and self.tx_watts < 0) or self.settle < 0:
            raise UsageError(f"policy options: expected 0 <= hysteresis < 1, latency_s >= 0, "
                             f"recent >= 1, tx_watts >= 0, settle >= 0; got {self}")


@dataclass(frozen=True)
class Decision:
    """What the policy chose for one image, and the predictions it chose from."""

    index: int
    point: Point
    fits: bool
    throughput_bps: float  # the estimate it decided with
    predicted_s: Dict[str, float]  # end to end per point name
    reason: str
    predicted_j: Optional[Dict[str, float]] = None  # energy mode: joules per point name


class Policy:
    """Per image: ``decide`` the point, send it, ``observe`` what the send took.

    After a drop that made a send late (deadline mode) the next ``settle`` images go on the
    fewest-bytes point: that send ran partly at the old rate, so its rate overstates the new
    one, and the link may still be draining it (resent segments, a full queue); the point
    then moves up again through the hysteresis margin, on settled estimates. A drop that
    left the send in time (e.g. after a burst overstated a rise) changes the estimate only.

    A send during which the transport sent bytes again (``resent_bytes``: a TCP timeout that
    fired while the rate fell) leaves those bytes queued on the link after the answer is in:
    ``hold_s`` is the time the link needs for them at the new estimate; the device waits for
    them (:meth:`sc2deploy.stream.client.Client.wait_for_resent`) before it takes the next
    image, rather than queue that image behind them.
    """

    def __init__(self, points: Sequence[Point], estimator: ThroughputEstimator,
                 options: PolicyOptions):
        _check_points(points)
        self.points, self.estimator, self.options = tuple(points), estimator, options
        self.bytes = BytePredictor({p.name: p.bytes for p in points}, options.recent)
        self.current: Optional[Point] = None
        self._settling = 0  # images still to send on the fewest-bytes point
        self.hold_s = 0.0  # seconds the link still needs for bytes the last send resent
        if options.top1_floor is not None:
            predicted_joules(points, estimator.bps, options.tx_watts)  # fails early if unknown

    def decide(self, image_index: int) -> Decision:
        bps, opt, sizes = self.estimator.bps, self.options, self.bytes.predictions()
        times = {p.name: end_to_end_s(p, sizes[p.name], bps, opt.latency_s) for p in self.points}
        joules = None
        if opt.top1_floor is None and self._settling:
            self._settling -= 1
            smallest = min(self.points, key=lambda p: (sizes[p.name], -p.top1))
            choice = Choice(smallest, times[smallest.name] <= opt.deadline_s,
                            f"settling after a drop: {smallest.name} (fewest bytes)")
        elif opt.top1_floor is None:
            choice = choose(self.points, bps, opt.deadline_s, latency_s=opt.latency_s,
                            nbytes=sizes, current=self.current, hysteresis=opt.hysteresis)
        else:
            choice = choose_energy(self.points, bps, opt.top1_floor, tx_watts=opt.tx_watts,
                                   nbytes=sizes)
            joules = predicted_joules(self.points, bps, opt.tx_watts, sizes)
        self.current = choice.point
        return Decision(image_index, choice.point, choice.fits, bps, times, choice.reason, joules)

    def observe(self, decision: Decision, bytes_sent: float, seconds: float,
                resent_bytes: float = 0.0) -> None:
        """``seconds``: the send, first byte out to last in (stream's round trip − server);
        the configured latency is taken off before the throughput is estimated.
        ``resent_bytes``: what the transport sent again during it (sets ``hold_s``)."""
        if resent_bytes < 0:
            raise UsageError(f"resent_bytes must be >= 0, got {resent_bytes}")
        self.bytes.observe(decision.point.name, bytes_sent)
        link_s = seconds - self.options.latency_s
        if link_s > 0:
            self.estimator.observe(bytes_sent, link_s)
            point = decision.point
            late = point.encode_s + seconds + point.server_s > self.options.deadline_s
            if self.estimator.dropped and late:
                self._settling = self.options.settle
        else:
            logger.debug("send of %s B took %.4f s, not more than the latency: no throughput "
                         "estimate from it", bytes_sent, seconds)
        self.hold_s = 8 * resent_bytes / self.estimator.bps


def _most_accurate(points: Sequence[Point]) -> Point:
    return max(points, key=lambda p: (p.top1, -p.bytes))


def _check_points(points: Sequence[Point]) -> None:
    names = [p.name for p in points]
    if not names:
        raise UsageError("no ladder points: give at least one Point")
    if len(set(names)) != len(names):
        raise UsageError(f"ladder point names must be unique, got {names}")


def finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def require_positive(name: str, value, meaning: str) -> None:
    if not finite(value) or not value > 0:
        raise UsageError(f"{name} must be a positive number ({meaning}), got {value!r}")
