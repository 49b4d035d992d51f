"""Entropy-model tables: read from a checkpoint or computed like CompressAI's ``update()``.

``update()`` changed its pmf after CompressAI 1.2.4 (seen in the PyPI sdists 1.1.3 to
1.2.8; there is no 1.2.5 on PyPI). Both evaluate float32 logits ``lower``/``upper``
at each bin's edges and add the same tail mass; the two pmfs differ in float
rounding, enough to change the quantized CDF of about one channel in 50 to 80::

    compressai-1.2.4   CompressAI <= 1.2.4   s = -sign(lower + upper)
                                             pmf = |sigmoid(s*upper) - sigmoid(s*lower)|
    compressai-1.2.6   CompressAI >= 1.2.6   pmf = sigmoid(upper) - sigmoid(lower)

``auto`` reads the generation from the parameter names: ``_matrices.{i}`` (the
pre-1.0 layout of CompressAI's zoo weights) and ``_matrix{i}`` (1.1.3 to 1.2.6)
→ compressai-1.2.4; ``matrices.{i}`` (>= 1.2.7) → compressai-1.2.6. Only 1.2.6
(March 2024 to June 2025) wrote ``_matrix{i}`` with the newer pmf: name the
formula explicitly for its checkpoints.
"""

from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np
import torch
from torch import Tensor

from sc2deploy.errors import CheckpointError, PriorError, UsageError
from sc2deploy.export.layers import FactorizedPrior
from sc2deploy.export.options import AUTO, PLAIN, SIGN_TRICK, TABLE_FORMULAS
from sc2deploy.prior import CDF_PRECISION, PriorTables

PMF_TEXT = {SIGN_TRICK: "|sigmoid(s*upper) - sigmoid(s*lower)|, s = -sign(lower + upper)",
            PLAIN: "sigmoid(upper) - sigmoid(lower)"}
_BY_NAMING = {  # entropy-bottleneck parameter names -> (formula, who wrote them)
    "_matrices.{i}": (SIGN_TRICK, "written by pre-1.0 CompressAI"),
    "_matrix{i}": (SIGN_TRICK, "written by CompressAI 1.1.3-1.2.6; all but 1.2.6 use this pmf"),
    "matrices.{i}": (PLAIN, "written by CompressAI >= 1.2.7"),
}


@dataclass(frozen=True)
class TablesFormula:
    """The pmf formula used when tables are computed, and why it was chosen."""

    name: str  # SIGN_TRICK or PLAIN
    requested: str  # what the user asked for: AUTO, SIGN_TRICK or PLAIN
    reason: str

    def to_manifest(self, used: bool) -> Dict:
        if not used:
            return {"formula": None, "requested": self.requested,
                    "reason": "not used: the checkpoint stores CompressAI's update() tables"}
        return {"formula": self.name, "pmf": PMF_TEXT[self.name], "requested": self.requested,
                "reason": self.reason}


def choose_formula(requested: str = AUTO, naming: Optional[str] = None) -> TablesFormula:
    """Resolve ``requested`` (``auto`` or a formula) for a naming from ``checkpoint.entropy_naming``.

    A missing naming (None) counts as ``matrices.{i}``.
    """
    if requested not in TABLE_FORMULAS:
        raise UsageError(f"unknown tables formula {requested!r}; choose one of "
                         f"{', '.join(TABLE_FORMULAS)}")
    if requested != AUTO:
        return TablesFormula(requested, requested, "requested explicitly")
    if naming is None:
        naming = "matrices.{i}"
    if naming not in _BY_NAMING:
        raise CheckpointError(f"unknown entropy_bottleneck naming {naming!r}; expected one of "
                              f"{', '.join(_BY_NAMING)}")
    formula, writer = _BY_NAMING[naming]
    return TablesFormula(formula, AUTO, f"auto: {naming} names ({writer})")


def pmf_to_quantized_cdf(pmf: np.ndarray, precision: int = CDF_PRECISION) -> np.ndarray:
    """Quantize a float32 pmf (tail bin included) to an integer CDF, as CompressAI does.

    Steps: round each p * 2**precision half away from zero, rescale by the
    integer total, cumulate, pin the last entry, then give every empty bin one
    unit stolen from the smallest bin that can spare it.
    """
    p = np.asarray(pmf, dtype=np.float32)
    if p.ndim != 1 or p.size == 0 or not np.all(np.isfinite(p)) or np.any(p < 0):
        raise PriorError("pmf must be a non-empty 1-D array of finite, non-negative values")
    scaled = p * np.float32(1 << precision)
    whole = np.trunc(scaled)
    freq = (whole + (scaled - whole >= np.float32(0.5))).astype(np.uint64)
    total = int(freq.sum())
    if total == 0:
        raise PriorError("pmf rounds to zero everywhere; cannot build a CDF")
    top = 1 << precision
    cdf = np.zeros(p.size + 1, dtype=np.int64)
    cdf[1:] = np.cumsum((np.uint64(top) * freq) // np.uint64(total)).astype(np.int64)
    cdf[-1] = top
    for i in range(cdf.size - 1):
        if cdf[i] != cdf[i + 1]:
            continue
        widths = np.diff(cdf)
        candidates = np.flatnonzero(widths > 1)
        if candidates.size == 0:
            raise PriorError("cannot give every symbol a non-zero frequency")
        steal = int(candidates[np.argmin(widths[candidates])])
        if steal < i:
            cdf[steal + 1: i + 1] -= 1
        else:
            cdf[i + 1: steal + 1] += 1
    return cdf.astype(np.int32)


def compute_tables(prior: FactorizedPrior, formula: str = PLAIN) -> PriorTables:
    """Build the tables like ``EntropyBottleneck.update()`` of the CompressAI ``formula`` names."""
    if formula not in PMF_TEXT:
        raise UsageError(f"unknown tables formula {formula!r}; choose {SIGN_TRICK} or {PLAIN}")
    with torch.no_grad():
        quantiles = prior.quantiles.detach()
        medians = quantiles[:, 0, 1]
        minima = torch.clamp(torch.ceil(medians - quantiles[:, 0, 0]).int(), min=0)
        maxima = torch.clamp(torch.ceil(quantiles[:, 0, 2] - medians).int(), min=0)
        pmf_start = medians - minima
        pmf_length = maxima + minima + 1
        max_length = int(pmf_length.max().item())
        samples = torch.arange(max_length)[None, :] + pmf_start[:, None, None]
        pmf, lower, upper = prior.likelihood(samples, stop_gradient=True)
        if formula == SIGN_TRICK:  # mirror each bin to the side where sigmoid is small
            flip = -torch.sign(lower + upper)
            pmf = torch.abs(torch.sigmoid(flip * upper) - torch.sigmoid(flip * lower))
        pmf = pmf[:, 0, :]
        tail = torch.sigmoid(lower[:, 0, :1]) + torch.sigmoid(-upper[:, 0, -1:])
    channels = medians.shape[0]
    cdf = np.zeros((channels, max_length + 2), dtype=np.int32)
    for c in range(channels):
        n = int(pmf_length[c])
        probs = np.concatenate([pmf[c, :n].numpy(), tail[c].numpy()])
        row = pmf_to_quantized_cdf(probs)
        cdf[c, : row.size] = row
    return PriorTables(
        medians=medians.numpy().astype(np.float32),
        offsets=(-minima).numpy().astype(np.int32),
        quantized_cdf=cdf,
        cdf_lengths=(pmf_length + 2).numpy().astype(np.int32),
    )


def stored_tables(state: Dict[str, Tensor]) -> Optional[PriorTables]:
    """Tables saved by CompressAI after ``update()``, or None when the buffers are empty."""
    names = ("_quantized_cdf", "_offset", "_cdf_length")
    present = [n for n in names if n in state and state[n].numel() > 0]
    if not present:
        return None
    if len(present) != len(names):
        missing = sorted(set(names) - set(present))
        raise CheckpointError(
            f"entropy_bottleneck has {present} but not {missing}; a checkpoint saved after "
            "update() carries all three (or none, and sc2deploy computes them)"
        )
    try:
        return PriorTables(
            medians=state["quantiles"][:, 0, 1].detach().float().numpy().copy(),
            offsets=state["_offset"].numpy().astype(np.int32),
            quantized_cdf=state["_quantized_cdf"].numpy().astype(np.int32),
            cdf_lengths=state["_cdf_length"].numpy().astype(np.int32),
        )
    except PriorError as exc:
        raise CheckpointError(f"stored entropy_bottleneck tables are invalid: {exc}") from exc
