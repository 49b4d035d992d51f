"""The fidelity gate: metric, rule and thresholds in one place (torch-free).

    reference symbols ─┐
    candidate symbols ─┴─ agreement() ─ stats ─ passes(precision, stats, min_agreement)
    reference pre-round values ─ ties ┘            fp32: is_exact(stats), else
                                                   agreement_pct >= threshold(precision, ...)

A symbol is the rounding of a float. When the reference float lies within
``TIE_TOLERANCE`` of a .5 boundary, two correct float implementations may
round it differently; such *ties* are counted apart from real mismatches.
:class:`GateOptions` is the rule and thresholds a user picks (``--gate``, ``--min-agreement``,
``--min-top1``, ``--max-kl``), shared by ``build`` and ``verify``.
"""

from dataclasses import dataclass
from types import MappingProxyType
from typing import Dict, Mapping, Optional, Sequence

import numpy as np

from sc2deploy.errors import FidelityError, RegistryError, UsageError
from sc2deploy.options import option, validate

# % of symbols equal to the torch fp32 head that each precision must reach (by default).
MIN_AGREEMENT: Mapping[str, float] = MappingProxyType({"fp32": 100.0, "fp16": 99.9,
                                                        "int8": 99.0})
PRECISIONS = tuple(MIN_AGREEMENT)
TIE_TOLERANCE = 1e-3  # in symbol units
MAX_TIE_FRACTION = 1e-4  # ties allowed in an exact (fp32) comparison


def agreement(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray],
              pre_round: Optional[Sequence[np.ndarray]] = None) -> Dict[str, float]:
    """Compare integer-valued arrays image by image; ``pre_round`` marks ties."""
    total = mismatched = ties = off_by_one = 0
    abs_diff = 0.0
    for i, (ref, cand) in enumerate(zip(reference, candidate)):
        ref = np.asarray(ref, dtype=np.float64)
        cand = np.asarray(cand, dtype=np.float64)
        if ref.shape != cand.shape:
            raise FidelityError(
                f"image {i}: received candidate symbols of shape {cand.shape}, expected the "
                f"reference's shape {ref.shape}: the artifact does not compute this bundle's "
                "head; rebuild it from this bundle (sc2deploy build BUNDLE --target T)")
        diff = np.abs(ref - cand)
        wrong = diff != 0
        total += ref.size
        mismatched += int(wrong.sum())
        off_by_one += int((diff <= 1).sum()) - int((~wrong).sum())
        abs_diff += float(diff.sum())
        if pre_round is not None:
            frac = np.abs(np.asarray(pre_round[i], dtype=np.float64))
            frac -= np.floor(frac)
            near = np.abs(frac - 0.5) <= TIE_TOLERANCE
            ties += int((wrong & near & (diff == 1)).sum())
    total = max(total, 1)
    return {"values": total, "mismatches": mismatched, "ties": ties,
            "agreement_pct": 100.0 * (total - mismatched) / total,
            "within_one_pct": 100.0 * (total - mismatched + off_by_one) / total,
            "mean_abs_diff": abs_diff / total}


def is_exact(stats: Dict[str, float]) -> bool:
    """True when every mismatch is a .5 tie and ties stay rare: at most ``MAX_TIE_FRACTION``
    of the values, or one tie on small samples (where that fraction is below one)."""
    return (stats["mismatches"] == stats["ties"]
            and stats["ties"] <= max(1.0, MAX_TIE_FRACTION * stats["values"]))


def threshold(precision: str, min_agreement: Optional[float] = None) -> float:
    """Required % of symbols equal to torch: ``min_agreement`` if given, else the precision's."""
    if min_agreement is not None:
        return min_agreement
    if precision not in MIN_AGREEMENT:
        raise RegistryError(f"precision {precision!r} has no gate: expected one of "
                            f"{', '.join(PRECISIONS)} (add its threshold to MIN_AGREEMENT in "
                            "sc2deploy/targets/gate.py)")
    return MIN_AGREEMENT[precision]


def passes(precision: str, stats: Dict[str, float],
           min_agreement: Optional[float] = None) -> bool:
    """The gate: fp32 must be exact bar rare .5 ties (unless ``min_agreement`` is given);
    every other precision needs ``threshold(precision, min_agreement)`` % equal symbols."""
    if precision == "fp32" and min_agreement is None:
        return is_exact(stats)
    return stats["agreement_pct"] >= threshold(precision, min_agreement)


# The task-level gate (bundles with a tail): what reaches the server's classifier.
#
#   n images ─ k with the fp32 pipeline's top-1 ─ 95 % Wilson interval [lo, hi]
#       lo >= bar (and mean KL <= MAX_KL) ─ passed: the agreement is shown to reach the bar
#       hi <  bar (or mean KL >  MAX_KL) ─ failed: shown to miss it
#       otherwise                        ─ undecided: too few images to tell (not a pass)
#
# The same rule decides on the host, under emulation and over ssh; only n differs, and the
# verdict says what n costs (which flip rates it can and cannot rule out).
MIN_TOP1_PCT = 95.0  # the bar for the lower bound of the top-1 agreement's 95 % interval
MAX_KL = 0.01  # nats: mean KL(softmax fp32 pipeline || softmax candidate) over the images
TASK_IMAGES = 200  # images a build's task verdict rests on by default
GATES = ("auto", "symbols", "task")
DECISIONS = ("passed", "failed", "undecided")


def task_agreement(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray]) -> Dict:
    """Compare the tail's logits for the candidate's symbols with the fp32 pipeline's."""
    n = len(reference)
    top1 = top5 = 0
    kl = []
    for ref, cand in zip(reference, candidate):
        ref = np.asarray(ref, np.float64).reshape(-1)
        cand = np.asarray(cand, np.float64).reshape(-1)
        top1 += int(np.argmax(ref) == np.argmax(cand))
        k = min(5, ref.size)
        top5 += len(set(np.argsort(-ref)[:k]) & set(np.argsort(-cand)[:k]))
        p, q = _log_softmax(ref), _log_softmax(cand)
        kl.append(float(np.sum(np.exp(p) * (p - q))))
    lo, hi = wilson_interval(top1, n)
    return {"images": n, "top1_agree": top1, "top1_agreement_pct": 100.0 * top1 / max(n, 1),
            "top1_ci95_pct": [100.0 * lo, 100.0 * hi],
            "top5_overlap_pct": 100.0 * top5 / max(5 * n, 1),
            "kl_mean": float(np.mean(kl)) if kl else 0.0,
            "kl_max": float(np.max(kl)) if kl else 0.0}


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max()
    return x - np.log(np.sum(np.exp(x)))


def wilson_interval(k: int, n: int, z: float = 1.96):
    """95 % Wilson score interval of a proportion k/n (sound at 0 and n, unlike the normal one)."""
    if n == 0:
        return 0.0, 1.0
    if not 0 <= k <= n:
        raise FidelityError(f"received {k} successes of {n} trials: expected 0 <= k <= n")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def images_to_show(bar_pct: float, z: float = 1.96) -> Optional[int]:
    """The fewest images that can pass a bar: all n agreeing, the Wilson lower bound
    n / (n + z²) reaches ``bar_pct``; None for a bar of 100 % (no finite sample shows it)."""
    bar = bar_pct / 100.0
    if bar >= 1.0:
        return None
    n = max(1, int(np.floor(z * z * bar / (1.0 - bar))))
    while wilson_interval(n, n, z)[0] < bar:
        n += 1
    return n


def images_to_decide(agree: int, images: int, bar_pct: float,
                     limit: int = 1_000_000) -> Optional[int]:
    """About how many images, at the observed agreement rate, put the whole 95 % interval on
    one side of the bar (None: the rate equals the bar, or more than ``limit`` are needed)."""
    rate = agree / images if images else 1.0
    m = max(images, 1)
    while m <= limit:
        lo, hi = wilson_interval(int(round(rate * m)), m)
        if 100.0 * lo >= bar_pct or 100.0 * hi < bar_pct:
            return m
        m += max(1, m // 200)
    return None


def task_evidence(agree: int, images: int, bar_pct: float = MIN_TOP1_PCT) -> Dict:
    """What ``agree`` of ``images`` top-1 agreements show about the bar: the decision of the
    interval alone (KL aside), the interval, and what this many images can tell apart."""
    if images < 0 or not 0 <= agree <= max(images, 0):
        raise FidelityError(f"received top-1 agreement {agree}/{images}: expected "
                            "0 <= agreements <= images")
    lo, hi = (100.0 * v for v in wilson_interval(agree, images))
    decision = "passed" if lo >= bar_pct else "failed" if hi < bar_pct else "undecided"
    needed = images_to_show(bar_pct)
    head = (f"{images} images: top-1 equal on {agree}/{images} = "
            f"{100.0 * agree / max(images, 1):.1f} %, 95 % interval {lo:.1f}-{hi:.1f} %")
    if decision == "passed":
        text = (f"{head}: shows >= {bar_pct:g} %; flip rates above {100.0 - lo:.1f} % are "
                "ruled out")
    elif decision == "failed":
        text = f"{head}: shows < {bar_pct:g} % (the whole interval is below the bar)"
    else:
        more = images_to_decide(agree, images, bar_pct)
        need = ("no finite sample shows 100 %: lower --min-top1" if needed is None else
                "at this agreement rate no number of images decides" if more is None else
                f"about {more} images at this agreement rate would decide")
        text = (f"{head}: too few images to decide at the {bar_pct:g} % bar (a flip rate up to "
                f"{100.0 - lo:.1f} % cannot be ruled out; {need})")
    return {"images": images, "top1_agree": agree,
            "top1_agreement_pct": 100.0 * agree / max(images, 1), "top1_ci95_pct": [lo, hi],
            "bar_pct": bar_pct, "decision": decision, "flip_rate_not_ruled_out_pct": 100.0 - lo,
            "images_to_show_bar": needed,
            "certainty": text}


def refuted(verdict: Dict) -> bool:
    """True when a verdict shows a failure; False when it passed or was undecided (too few
    images to tell: e.g. an emulated CPU's few images cannot establish a pass, only refute)."""
    return not verdict["passed"] and verdict.get("decision") != "undecided"


def decide(precision: str, stats: Dict, task: Optional[Dict], gate: str = "auto",
           min_agreement: Optional[float] = None, min_top1: Optional[float] = None,
           max_kl: Optional[float] = None) -> Dict:
    """The verdict, its decision (passed, failed, undecided) and the rule that decided it.

    fp32 artifacts are always judged on symbols (exact bar .5 ties): they must reproduce
    the export, and any other flip is a defect, not a precision loss. fp16/int8 artifacts
    of a bundle with a tail are judged on what reaches the server (``task``): the lower bound
    of the 95 % Wilson interval of the top-1 agreement with the fp32 pipeline at or above
    ``min_top1`` % AND a mean KL divergence of the predictions of at most ``max_kl`` nats
    (:func:`task_evidence` says what the images can tell apart); otherwise on symbols.
    """
    if gate not in GATES:
        raise FidelityError(f"--gate {gate!r}: expected one of {', '.join(GATES)}")
    if gate == "task" and task is None:
        raise FidelityError("--gate task needs a bundle with a tail (tail.onnx); this one has "
                            "none: use --gate symbols, or export a checkpoint with its tail")
    use_task = task is not None and precision != "fp32" and gate != "symbols"
    if not use_task:
        ok = passes(precision, stats, min_agreement)
        rule = ("symbols: exact bar .5 ties" if precision == "fp32" and min_agreement is None
                else f"symbols: >= {threshold(precision, min_agreement)} % equal")
        return {"rule": rule, "passed": ok, "decision": "passed" if ok else "failed",
                "min_agreement_pct": threshold(precision, min_agreement)}
    top1 = MIN_TOP1_PCT if min_top1 is None else min_top1
    kl = MAX_KL if max_kl is None else max_kl
    evidence = task_evidence(task["top1_agree"], task["images"], top1)
    decision = evidence["decision"]
    if task["kl_mean"] > kl:
        decision = "failed"
        evidence["certainty"] += (f"; but the mean KL, {task['kl_mean']:.3g} nats, is above "
                                  f"the {kl:g} nats bar")
    return {"rule": f"task: 95 % lower bound of the top-1 agreement >= {top1:g} % (on "
                    f"{task['images']} images: {evidence['top1_ci95_pct'][0]:.1f} %) and mean "
                    f"KL <= {kl:g} nats",
            "passed": decision == "passed", "decision": decision, "min_top1_pct": top1,
            "max_kl": kl, "evidence": evidence}


@dataclass(frozen=True)
class GateOptions:
    """Which gate decides and its thresholds (None: the defaults above)."""

    kind: str = option("auto", flag="--gate", choices=("auto", "task", "symbols"),
                       help="what decides: task = the server's predictions (needs a tail), "
                            "symbols; auto = task when the bundle has a tail (fp32: always "
                            "symbols)")
    min_agreement: Optional[float] = option(
        None, flag="--min-agreement", type=float, metavar="PCT",
        help="symbols gate: required %% of symbols equal to torch (default: fp32 100, fp16 "
             "99.9, int8 99)")
    min_top1: Optional[float] = option(
        None, flag="--min-top1", type=float, metavar="PCT",
        help="task gate: the bar for the lower bound of the 95 %% interval of the top-1 "
             f"agreement with the fp32 pipeline (default: {MIN_TOP1_PCT:g})")
    max_kl: Optional[float] = option(
        None, flag="--max-kl", type=float, metavar="NATS",
        help="task gate: mean KL divergence of the predictions from the fp32 pipeline's "
             f"(default: {MAX_KL:g})")

    def __post_init__(self):
        if self.kind not in GATES:
            raise UsageError(f"--gate {self.kind!r}: expected one of {', '.join(GATES)}")
        validate(self)
        for flag, value in (("--min-agreement", self.min_agreement),
                            ("--min-top1", self.min_top1)):
            if value is not None and not 0.0 <= value <= 100.0:
                raise UsageError(f"{flag} {value:g}: expected a percentage from 0 to 100")
        if self.max_kl is not None and not self.max_kl >= 0.0:
            raise UsageError(f"--max-kl {self.max_kl:g}: expected a divergence >= 0 (nats)")

    def verdict(self, precision: str, stats: Dict) -> Dict:
        """:func:`decide` with these options, on ``stats`` (and its ``task``, if any)."""
        return decide(precision, stats, stats.get("task"), self.kind, self.min_agreement,
                      self.min_top1, self.max_kl)
