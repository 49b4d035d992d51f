"""Entropy-model tables of a factorized prior, stored without pickle (torch-free).

Per channel ``c`` the latent symbol ``s = round(y - median[c])`` is coded with
index ``s - offset[c]`` in ``[0, pmf_length[c])``; values outside use the tail
(escape) bin. The tables follow CompressAI's layout:

``quantized_cdf[c, :cdf_length[c]]``  16-bit CDF, ``cdf_length = pmf_length + 2``
``pmf(c)``                            float64, ``pmf_length[c] + 1`` entries;
                                      the last one is the tail (escape) mass.

The float64 pmf is exactly the quantized CDF's bin widths divided by 2**16, so
both descriptions give the same distribution on every platform.
"""

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import List

import numpy as np

from sc2deploy.errors import PriorError

CDF_PRECISION = 16
_ARRAYS = ("medians", "offsets", "pmf_lengths", "quantized_cdf", "cdf_lengths", "pmf")


@dataclass(frozen=True)
class PriorTables:
    """Validated factorized-prior tables for ``C`` latent channels."""

    medians: np.ndarray  # float32 [C]
    offsets: np.ndarray  # int32 [C], = -minima
    quantized_cdf: np.ndarray  # int32 [C, max(cdf_length)]
    cdf_lengths: np.ndarray  # int32 [C]

    def __post_init__(self):
        _validate(self)

    @property
    def channels(self) -> int:
        return int(self.medians.shape[0])

    @property
    def pmf_lengths(self) -> np.ndarray:
        return (self.cdf_lengths - 2).astype(np.int32)

    def pmf(self, channel: int) -> np.ndarray:
        """float64 probabilities of channel ``channel``; the last entry is the tail."""
        n = int(self.cdf_lengths[channel])
        cdf = self.quantized_cdf[channel, :n].astype(np.int64)
        return np.diff(cdf).astype(np.float64) / float(1 << CDF_PRECISION)

    def pmfs(self) -> List[np.ndarray]:
        return [self.pmf(c) for c in range(self.channels)]

    def digest(self) -> str:
        """sha256 over the tables that define the coded distribution."""
        h = hashlib.sha256()
        for arr in (self.medians, self.offsets, self.cdf_lengths):
            h.update(np.ascontiguousarray(arr).tobytes())
        for c in range(self.channels):
            h.update(self.quantized_cdf[c, : int(self.cdf_lengths[c])].astype("<i4").tobytes())
        return h.hexdigest()

    def bits_per_symbol(self, symbols: np.ndarray) -> float:
        """Ideal information content (bits/symbol) of a [C,H,W] or [N,C,H,W] latent."""
        return float(self.bits_per_channel(symbols).mean())

    def bits_per_channel(self, symbols: np.ndarray) -> np.ndarray:
        """Mean ideal bits/symbol of each channel (−log2 p under this prior).

        Out-of-support values are charged the tail bin only (their escape
        payload is coder-specific).
        """
        sym = np.asarray(symbols)
        if sym.ndim == 3:
            sym = sym[None]
        if sym.ndim != 4 or sym.shape[1] != self.channels:
            raise PriorError(
                f"latent shape {tuple(np.shape(symbols))} does not fit a prior with "
                f"{self.channels} channels: expected [C,H,W] or [N,C,H,W] with C={self.channels}"
            )
        bits = np.empty(self.channels)
        for c in range(self.channels):
            logp = np.log2(self.pmf(c))
            idx = sym[:, c].astype(np.int64).ravel() - int(self.offsets[c])
            n = int(self.pmf_lengths[c])
            idx = np.where((idx < 0) | (idx >= n), n, idx)
            bits[c] = -float(logp[idx].mean())
        return bits

    def save(self, path: Path) -> None:
        """Write the tables as an ``.npz`` of plain arrays (no pickle)."""
        buf = io.BytesIO()
        np.savez(buf, medians=self.medians, offsets=self.offsets,
                 pmf_lengths=self.pmf_lengths, quantized_cdf=self.quantized_cdf,
                 cdf_lengths=self.cdf_lengths,
                 pmf=np.concatenate(self.pmfs()))
        Path(path).write_bytes(buf.getvalue())

    @classmethod
    def load(cls, path: Path) -> "PriorTables":
        """Read and validate tables written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in _ARRAYS}
        except (OSError, ValueError, KeyError) as exc:
            raise PriorError(f"cannot read prior tables {path}: {exc}") from exc
        tables = cls(
            medians=arrays["medians"].astype(np.float32),
            offsets=arrays["offsets"].astype(np.int32),
            quantized_cdf=arrays["quantized_cdf"].astype(np.int32),
            cdf_lengths=arrays["cdf_lengths"].astype(np.int32),
        )
        stored = arrays["pmf"]
        if not np.array_equal(stored, np.concatenate(tables.pmfs())):
            raise PriorError(f"{path}: stored pmf disagrees with its quantized CDF")
        return tables


def _validate(t: PriorTables) -> None:
    c = t.medians.shape[0] if t.medians.ndim == 1 else -1
    if c <= 0:
        raise PriorError(f"medians must be a non-empty 1-D array, got shape {t.medians.shape}")
    for name in ("offsets", "cdf_lengths"):
        if getattr(t, name).shape != (c,):
            raise PriorError(f"{name} has shape {getattr(t, name).shape}, expected ({c},)")
    if t.quantized_cdf.ndim != 2 or t.quantized_cdf.shape[0] != c:
        raise PriorError(f"quantized_cdf has shape {t.quantized_cdf.shape}, expected ({c}, L)")
    if not np.all(np.isfinite(t.medians)):
        raise PriorError("medians contain NaN or infinity")
    if np.any(t.offsets > 0):
        raise PriorError("offsets must be <= 0 (offset = -minimum of the support)")
    if np.any(t.cdf_lengths < 3) or np.any(t.cdf_lengths > t.quantized_cdf.shape[1]):
        raise PriorError(
            f"cdf_lengths must lie in [3, {t.quantized_cdf.shape[1]}], got "
            f"min {t.cdf_lengths.min()} max {t.cdf_lengths.max()}"
        )
    top = 1 << CDF_PRECISION
    for ch in range(c):
        cdf = t.quantized_cdf[ch, : int(t.cdf_lengths[ch])].astype(np.int64)
        if cdf[0] != 0 or cdf[-1] != top or np.any(np.diff(cdf) <= 0):
            raise PriorError(
                f"channel {ch}: quantized CDF must start at 0, end at {top} and be strictly "
                "increasing (every symbol needs a non-zero probability)"
            )
