"""``sc2deploy stream --ladder``: per image, the ladder point that meets the deadline (issue 22).

::

    image ─ Policy.decide ─ that point's head ─ code ─ queue ─ POST (its bundle's digest) ─┐
              ▲                                                                            │
              └──────── Policy.observe(bytes, round trip − server's ms) ◀──────────────────┘

The points (:func:`sc2deploy.measure.ladder.ladder_points`): each bundle's top-1 from its
``evaluate`` results; its bytes from its reference latents, then from its recent containers;
its encode time measured here (:class:`Timings`), its server time from the answers. The
estimator (:class:`~sc2deploy.measure.adaptive.ThroughputEstimator`) starts
from ``--prior-kbps`` or the ``--link`` model's rate. Every decision and outcome is recorded:
per image ``adaptive`` (point, reason, estimate, predicted and measured end to end, met), and
the document's ``adaptive`` (the options, the points, a summary).
"""

import hashlib
import time
from collections import deque
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from sc2deploy import wire
from sc2deploy.errors import UsageError
from sc2deploy.log import logger
from sc2deploy.measure.adaptive import (Decision, Point, Policy, PolicyOptions,
                                        ThroughputEstimator, require_positive)
from sc2deploy.measure.ladder import describe, ladder_points, load_evaluations, open_family
from sc2deploy.measure.links import load_link
from sc2deploy.measure.progress import Progress
from sc2deploy.options import option, validate
from sc2deploy.preprocess import list_images, sample_images
from sc2deploy.results.schema import utc_now
from sc2deploy.stream.client import (SEGMENT_HEADERS_BYTES, Client, Queue, Sender,
                                     StreamOptions, refused)
from sc2deploy.targets import load_runner
from sc2deploy.targets.encoding import latent_codec

ESTIMATOR = ("exponentially weighted harmonic mean (alpha 0.3) of 8 x bytes on the wire "
             "(container + overhead_bytes) / (round trip - server's ms) per answered image; a rate "
             "under half the estimate is taken at once, two in a row over twice it are taken at "
             "once")
# TCP/IP + Ethernet headers of about two segments up and two ACKs of the reply, per request
PACKET_HEADERS_BYTES = 4 * SEGMENT_HEADERS_BYTES


@dataclass(frozen=True)
class LadderOptions:
    """The ladder and how to choose on it: the deadline (with hysteresis), or with
    ``min_top1`` the least device + radio energy among points at least that accurate.
    No ``bundles``: no ladder (``sc2deploy stream BUNDLE``), and none of the rest given."""

    bundles: Optional[Tuple[Path, ...]] = option(
        None, flag="--ladder", type=Path, nargs="+", metavar="BUNDLE",
        help="adapt to the link: per image, the most accurate of these points (one ladder, as "
             "`serve` holds them) whose predicted end to end meets --deadline-ms")
    evaluations: Optional[Tuple[Path, ...]] = option(  # `sc2deploy evaluate`: each point's top-1
        None, flag="--evaluation", type=Path, nargs="+", metavar="RESULTS",
        help="with --ladder: `sc2deploy evaluate` results of every point (its top-1 and ms)")
    deadline_ms: Optional[float] = option(None, flag="--deadline-ms", type=float, metavar="MS",
                                          help="with --ladder: end to end per image")
    min_top1: Optional[float] = option(  # set: energy mode (%)
        None, flag="--min-top1", type=float, metavar="PCT",
        help="with --ladder: choose the least device + radio energy (radio: --link's TX power x "
             "airtime) among points with top-1 >= PCT instead")
    prior_kbps: Optional[float] = option(
        None, flag="--prior-kbps", type=float, metavar="K",
        help="with --ladder: the link's rate before the first answer (default: --link's model)")
    hysteresis: float = option(0.1, type=float, help="move up a point only when its predicted "
                                                    "end to end is <= (1 - hysteresis) x deadline")

    def __post_init__(self):
        validate(self)
        adaptive = {"--deadline-ms": self.deadline_ms, "--evaluation": self.evaluations or None,
                    "--min-top1": self.min_top1, "--prior-kbps": self.prior_kbps}
        if not self.bundles:
            given = [flag for flag, value in adaptive.items() if value is not None]
            if given:
                raise UsageError(f"{', '.join(given)}: for an adaptive stream; give --ladder too")
            return
        if self.deadline_ms is not None:
            require_positive("--deadline-ms", self.deadline_ms,
                             "milliseconds per image, end to end")
        missing = [flag for flag in ("--deadline-ms", "--evaluation") if adaptive[flag] is None]
        if missing:
            raise UsageError(f"--ladder needs {' and '.join(missing)} (the deadline per image; "
                             "each point's `sc2deploy evaluate` results, for its top-1)")
        if self.prior_kbps is not None:
            require_positive("--prior-kbps", self.prior_kbps, "the link's expected kbit/s")
        if self.min_top1 is not None and not 0 <= self.min_top1 <= 100:
            raise UsageError(f"--min-top1 {self.min_top1}: expected a top-1 in percent, 0-100")


def stream_ladder(options: StreamOptions, ladder: LadderOptions) -> dict:
    """Send every image on the point the policy chooses; a results document of kind
    ``stream`` with the ``adaptive`` record."""
    if options.uses_camera:
        raise UsageError("an adaptive stream (--ladder) sends --images; a camera is not "
                         "supported with --ladder yet")
    if not ladder.bundles:
        raise UsageError("--ladder needs at least one bundle (the points of one ladder)")
    created = utc_now()
    bundles = open_family(ladder.bundles)
    images = list_images(options.images) if options.images else sample_images()
    codecs = [latent_codec(b, options.coder) for b in bundles]
    points = ladder_points(bundles, codecs, load_evaluations(ladder.evaluations), options.target)
    digests = [b.manifest["manifest_sha256"] for b in bundles]
    client = Client(options, digests[0])
    overhead = request_overhead_bytes(client)  # every send carries it: bytes on the wire
    points = [replace(p, bytes=p.bytes + overhead) for p in points]
    link = load_link(options.link) if options.link else None
    policy = Policy(points, ThroughputEstimator(_prior_bps(ladder, link, points)), PolicyOptions(
        ladder.deadline_ms / 1e3, ladder.hysteresis, top1_floor=ladder.min_top1,
        tx_watts=link.tx_watts if link else None))
    prior_bps = policy.estimator.bps
    by_name = {p.name: (b, c) for p, b, c in zip(points, bundles, codecs)}
    queue = Queue(options.queue, hashlib.sha256(" ".join(digests).encode()).hexdigest())
    progress = Progress("stream", len(images), enabled=options.progress)
    sender = Sender(client, queue, options, progress)
    pre = bundles[0].preprocessing()  # one family: one preprocessing
    started_with: List[dict] = []
    with sender.sending(), ExitStack() as stack:
        runners = {p.name: stack.enter_context(load_runner(b, options.target))
                   for p, b in zip(points, bundles)}

        def encode(name: str, path) -> bytes:
            return by_name[name][1].encode(runners[name].infer(pre(path))[0])

        timings = Timings(points, {p.name: _timed(encode, p.name, images[0]) for p in points})
        timings.apply(policy)
        started_with = describe(policy.points, bundles, overhead)
        for index, path in enumerate(images):
            waited_s = _wait_for_the_link(policy, client)
            started, decision = time.monotonic(), None
            if path.name not in queue.entries:
                decision = policy.decide(index)
                name = decision.point.name
                t0 = time.perf_counter_ns()
                data = encode(name, path)
                queue.add(path.name, data, (time.perf_counter_ns() - t0) / 1e6,
                          bundle=by_name[name][0].manifest["manifest_sha256"],
                          adaptive=_choice(decision, policy, overhead, waited_s))
            sender.send(path.name)
            _outcome(queue, queue.entries[path.name], policy, decision, ladder.deadline_ms,
                     timings, overhead)
            time.sleep(max(0.0, options.interval_s - (time.monotonic() - started)))
    label = options.label or f"ladder {points[0].name}..{points[-1].name}/{options.target}/adaptive"
    doc = sender.document(replace(options, label=label), bundles[0], created, codecs[0].coder,
                          link, len(images))
    doc["adaptive"] = {
        "mode": "deadline" if ladder.min_top1 is None else "energy",
        "deadline_ms": ladder.deadline_ms, "min_top1": ladder.min_top1,
        "hysteresis": ladder.hysteresis, "prior_bps": prior_bps, "estimator": ESTIMATOR,
        "overhead_bytes": overhead,
        "points": started_with,
        "summary": summarize_choices(doc["predictions"], {p.name: p.top1 for p in points})}
    return doc


def summarize_choices(predictions: List[dict], top1: Dict[str, float]) -> dict:
    """Deadline hit rate, the points' expected top-1 and the switches, over answered images."""
    rows = [p["adaptive"] for p in predictions if "measured_e2e_ms" in p.get("adaptive", {})]
    chosen = [r["point"] for r in rows]
    n = len(rows)
    return {"images": n, "met": sum(r["met"] for r in rows),
            "hit_rate": sum(r["met"] for r in rows) / n if n else None,
            "mean_top1": sum(top1[c] for c in chosen) / n if n else None,
            "switches": sum(a != b for a, b in zip(chosen, chosen[1:])),
            "images_per_point": {name: chosen.count(name) for name in top1}}


def _prior_bps(ladder: LadderOptions, link, points) -> float:
    if ladder.prior_kbps is not None:
        return ladder.prior_kbps * 1e3
    if link is None:
        raise UsageError("an adaptive stream needs the link's expected rate to start from: "
                         "--prior-kbps K, or --link NAME|FILE (its model's rate)")
    nbytes = max(1, round(sum(p.bytes for p in points) / len(points)))
    return ThroughputEstimator.from_link(link, nbytes).bps


def request_overhead_bytes(client: Client) -> int:
    """Bytes each request sends besides its container: the HTTP request line and headers as
    http.client writes them (Content-Length's digits taken as 5) and the packets' headers."""
    head = {**client.headers, "Host": f"{client.host}:{client.port}",
            "Accept-Encoding": "identity", "Content-Length": "12345",
            wire.REQUEST_ID_HEADER: "x" * 20}
    return (len(f"POST {wire.INFER_PATH} HTTP/1.1\r\n") + sum(len(k) + len(v) + 4 for k, v in
                                                          head.items()) + 2
            + PACKET_HEADERS_BYTES)


def _wait_for_the_link(policy: Policy, client: Client) -> float:
    """Before the next image is taken, wait for the link to carry what the last send resent
    (until the server reports the duplicates; about the policy's ``hold_s``); returns the
    seconds waited."""
    expected, policy.hold_s = policy.hold_s, 0.0
    if expected <= 0:
        return 0.0
    waited = client.wait_for_resent(expected)
    logger.info("the last send was partly sent again: waited %.0f ms (%.0f expected) for the "
                "link to carry it before the next image", waited * 1e3, expected * 1e3)
    return waited


def _choice(decision: Decision, policy: Policy, overhead: int, waited_s: float = 0.0) -> dict:
    name = decision.point.name
    record = {"point": name, "fits": decision.fits, "reason": decision.reason,
              "estimate_bps": decision.throughput_bps,
              "predicted_bytes": policy.bytes.predict(name) - overhead,
              "predicted_e2e_ms": decision.predicted_s[name] * 1e3}
    if waited_s > 0:
        record["waited_ms"] = waited_s * 1e3
    if decision.predicted_j is not None:
        record["predicted_j"] = decision.predicted_j[name]
    return record


def _outcome(queue: Queue, entry: dict, policy: Policy, decision: Optional[Decision],
             deadline_ms: float, timings: "Timings", overhead: int) -> None:
    """Record what the image took; feed the policy the send and the times (only this run's
    decisions)."""
    record = entry.get("adaptive")
    if record is None or entry["status"] != wire.OK or refused(entry):
        return
    server_ms = entry["answer"]["server_ms"]["total"]
    measured = entry["encode_ms"] + entry["round_trip_ms"]
    record.update(measured_e2e_ms=measured, met=measured <= deadline_ms,
                  transfer_ms=entry["round_trip_ms"] - server_ms)
    if decision is not None and record["transfer_ms"] > 0:
        policy.observe(decision, entry["bytes"] + overhead, record["transfer_ms"] / 1e3,
                       entry.get("resent_bytes", 0))
        record["estimate_after_bps"] = policy.estimator.bps
        timings.observe(record["point"], entry["encode_ms"] / 1e3, server_ms / 1e3)
        timings.apply(policy)
    queue.save()


class Timings:
    """Each point's encode and server seconds as they are now: encode timed here (its head on
    the first image at start, then the mean of its last ``recent`` images), server from the
    answers (its last ``recent``; a point not sent yet: the latest answer of any point, else
    its evaluation's). An evaluation run elsewhere, or on a busy machine, does not decide."""

    def __init__(self, points: Sequence[Point], encode_s: Dict[str, float], recent: int = 4):
        self.base = list(points)
        self.encode = {p.name: deque([encode_s[p.name]], maxlen=recent) for p in points}
        self.server: Dict[str, deque] = {p.name: deque(maxlen=recent) for p in points}
        self.latest_server: Optional[float] = None

    def observe(self, name: str, encode_s: float, server_s: float) -> None:
        self.encode[name].append(encode_s)
        self.server[name].append(server_s)
        self.latest_server = server_s

    def points(self) -> List[Point]:
        def server(p):
            times = self.server[p.name]
            return sum(times) / len(times) if times else (
                p.server_s if self.latest_server is None else self.latest_server)
        return [replace(p, encode_s=sum(self.encode[p.name]) / len(self.encode[p.name]),
                        server_s=server(p)) for p in self.base]

    def apply(self, policy: Policy) -> None:
        policy.points = tuple(self.points())
        if policy.current is not None:
            policy.current = next(p for p in policy.points if p.name == policy.current.name)


def _timed(encode, name: str, image, runs: int = 3) -> float:
    """Median seconds of ``runs`` encodes of ``image`` with point ``name``, after a warm-up."""
    encode(name, image)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        encode(name, image)
        times.append((time.perf_counter_ns() - t0) / 1e9)
    return sorted(times)[runs // 2]
