"""Summary statistics of timings and a confidence interval (numpy only)."""

import math
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from sc2deploy.results.schema import SAMPLE_CAP, STAT_KEYS

# Two-sided 95 % Student t quantiles for 1..30 degrees of freedom (beyond: normal 1.96).
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def summarize(values: Sequence[float]) -> Dict[str, float]:
    """n, mean, std (sample), min, p50/p90/p95/p99 (linear interpolation), max."""
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        return {k: 0.0 for k in STAT_KEYS} | {"n": 0}
    p50, p90, p95, p99 = np.percentile(a, [50, 90, 95, 99])
    return {"n": int(a.size), "mean": float(a.mean()),
            "std": float(a.std(ddof=1)) if a.size > 1 else 0.0, "min": float(a.min()),
            "p50": float(p50), "p90": float(p90), "p95": float(p95), "p99": float(p99),
            "max": float(a.max())}


def ns_to_ms(values_ns: Sequence[int]) -> np.ndarray:
    return np.asarray(values_ns, dtype=np.float64) / 1e6


def mean_ci95(values: Sequence[float]) -> Tuple[float, Optional[Tuple[float, float]]]:
    """Mean and its 95 % confidence interval (Student t); no interval for fewer than 2 values."""
    a = np.asarray(values, dtype=np.float64)
    mean = float(a.mean())
    if a.size < 2:
        return mean, None
    t = _T95[a.size - 2] if a.size - 1 <= len(_T95) else 1.96
    half = t * float(a.std(ddof=1)) / math.sqrt(a.size)
    return mean, (mean - half, mean + half)


def samples_entry(stages_ms: Dict[str, Sequence[float]], cap: int = SAMPLE_CAP) -> dict:
    """The ``samples`` entry of a results document: every per-image time (ms, to 0.1 µs) when
    a stage has at most ``cap``, else a uniform random subset of ``cap`` (seed 0, without
    replacement, in measurement order). Stages of equal length keep the same images, so
    sample i of every stage is one image."""
    picks: Dict[int, np.ndarray] = {}
    out, thinned = {}, False
    for stage, values in stages_ms.items():
        a = np.asarray(values, dtype=np.float64)
        if a.size > cap:
            thinned = True
            if a.size not in picks:
                rng = np.random.default_rng(0)
                picks[a.size] = np.sort(rng.choice(a.size, cap, replace=False))
            a = a[picks[a.size]]
        out[stage] = [round(float(v), 4) for v in a]
    return {"cap": cap, "selection": "uniform" if thinned else "all", "latency_ms": out}
