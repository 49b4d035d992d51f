"""Entropy-model tables: read from a checkpoint or computed like CompressAI's ``update()``."""

from typing import Dict, Optional

import numpy as np
import torch
from torch import Tensor

from sc2deploy.errors import CheckpointError, PriorError
from sc2deploy.export.layers import FactorizedPrior
from sc2deploy.prior import CDF_PRECISION, PriorTables


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


def compute_tables(prior: FactorizedPrior) -> PriorTables:
    """Build the tables from the density parameters, exactly like ``EntropyBottleneck.update()``."""
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
