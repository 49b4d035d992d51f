"""Lossless coding of integer latents [C,H,W] with a bundle's factorized prior.

Per channel ``c``, a symbol ``s`` is coded as index ``s - offset[c]`` under the
channel's pmf when it lies in the support ``[0, n_c)``; otherwise the tail bin
``n_c`` is coded (escape) and the value goes to the escape segments::

    words = channel 0 … channel C-1 | escape lengths | escape nibbles

Escape value: distance ``d`` past the support edge and a side bit,
``z = 2*d + side``, written as ``k`` base-16 digits (most significant first,
each uniform over 16) after ``k - 1`` (uniform over 9). Any int32 value fits.
"""

from typing import Optional, Sequence

import numpy as np

from sc2deploy.codec import container
from sc2deploy.codec.backends import get_backend
from sc2deploy.errors import CodecError
from sc2deploy.prior import PriorTables

MAX_DIGITS = 9  # z < 2**33 for any int32 symbol
COUNT_PMF = np.full(MAX_DIGITS, 1.0 / MAX_DIGITS)
DIGIT_PMF = np.full(16, 1.0 / 16)
_INT32 = np.iinfo(np.int32)


class LatentCodec:
    """Encode/decode latents with one prior and one coder backend."""

    def __init__(self, prior: PriorTables, coder: Optional[str] = None):
        self.prior = prior
        backend = get_backend(coder)
        self.coder = backend.name
        native = getattr(backend, "latent_coder", None)
        self._impl = (native(prior, COUNT_PMF, DIGIT_PMF) if native
                      else SegmentLatentCoder(backend, prior))
        self._digest = container.prior_digest16(prior.digest())

    def encode(self, latent: np.ndarray) -> bytes:
        """One container for a [C,H,W] integer latent."""
        sym = _as_int_latent(latent, self.prior.channels)
        c, h, w = sym.shape
        words = self._impl.encode(sym.reshape(c, h * w))
        return container.pack((c, h, w), self._digest, words.astype("<u4").tobytes())

    def decode(self, data: bytes, expected_shape: Optional[Sequence[int]] = None) -> np.ndarray:
        """The [C,H,W] int32 latent of one container (checked against this prior)."""
        header, payload = container.unpack(data)
        return self._decode(header, payload, expected_shape)

    def decode_batch(self, data: bytes, expected_shape=None):
        """Latents of a batch file (containers one after another)."""
        return [self._decode(h, p, expected_shape) for h, p in container.iter_containers(data)]

    def _decode(self, header, payload: bytes, expected_shape) -> np.ndarray:
        c, h, w = header.shape
        if c != self.prior.channels:
            raise CodecError(f"stream has {c} channels, the prior has {self.prior.channels}")
        if expected_shape is not None and tuple(expected_shape) != (c, h, w):
            raise CodecError(f"stream latent shape {(c, h, w)} differs from the bundle's "
                             f"{tuple(expected_shape)}")
        if header.prior_digest != self._digest:
            raise CodecError("stream was coded with another prior (prior digest mismatch); "
                             "decode it with the bundle that encoded it")
        words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
        return self._impl.decode(words, c, h * w, max_digits(len(payload))).reshape(c, h, w)


def max_digits(payload_bytes: int) -> int:
    """Escape digits a payload can hold: each costs exactly 4 bits (plus coder slack)."""
    return (8 * payload_bytes + 64) // 4


class SegmentLatentCoder:
    """Escape coding with numpy, on any backend that codes segments (e.g. constriction)."""

    def __init__(self, backend, prior: PriorTables):
        self.backend = backend
        self._models = [backend.model(prior.pmf(c)) for c in range(prior.channels)]
        self._count_model = backend.model(COUNT_PMF)
        self._digit_model = backend.model(DIGIT_PMF)
        self._offsets = prior.offsets.astype(np.int64)[:, None]
        self._lengths = prior.pmf_lengths.astype(np.int64)[:, None]

    def encode(self, flat: np.ndarray) -> np.ndarray:
        idx = flat.astype(np.int64) - self._offsets
        n = self._lengths
        outside = (idx < 0) | (idx >= n)
        coded = np.where(outside, n, idx).astype(np.int32)
        z = np.where(idx < 0, 2 * (-idx - 1), 2 * (idx - n) + 1)[outside]
        counts, digits = _to_digits(z)
        segments = [(coded[ch], model) for ch, model in enumerate(self._models)]
        segments += [(counts, self._count_model), (digits, self._digit_model)]
        return self.backend.encode(segments)

    def decode(self, words: np.ndarray, channels: int, per_channel: int, digit_limit: int):
        decoder = self.backend.decoder(words)
        idx = np.stack([decoder.decode(m, per_channel) for m in self._models]).astype(np.int64)
        escaped = idx == self._lengths
        counts = decoder.decode(self._count_model, int(escaped.sum())).astype(np.int64) + 1
        if int(counts.sum()) > digit_limit:
            raise CodecError("invalid compressed data: more escape digits than the payload holds")
        z = _from_digits(counts, decoder.decode(self._digit_model, int(counts.sum())))
        n_at = np.broadcast_to(self._lengths, idx.shape)[escaped]
        idx[escaped] = np.where(z & 1, n_at + (z >> 1), -(z >> 1) - 1)
        sym = idx + self._offsets
        if sym.size and (sym.min() < _INT32.min or sym.max() > _INT32.max):
            raise CodecError("invalid compressed data: decoded value exceeds int32")
        return sym.astype(np.int32)


def _as_int_latent(latent, channels: int) -> np.ndarray:
    arr = np.asarray(latent)
    if arr.ndim != 3 or arr.shape[0] != channels:
        raise CodecError(f"latent of shape {arr.shape} does not fit: expected [C,H,W] with "
                         f"C={channels}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise CodecError("latent has non-integer or non-finite values")
        if arr.size and (arr.min() < _INT32.min or arr.max() > _INT32.max):
            raise CodecError("latent values exceed the int32 range")
    elif arr.dtype.kind not in "iu":
        raise CodecError(f"latent must hold integers, got dtype {arr.dtype}")
    elif arr.size and (int(arr.min()) < _INT32.min or int(arr.max()) > _INT32.max):
        raise CodecError("latent values exceed the int32 range")
    return arr.astype(np.int32)


def _to_digits(z: np.ndarray):
    """Base-16 digits of each ``z`` (most significant first) and their counts minus one."""
    z = z.astype(np.int64)
    k = np.ones(z.shape, dtype=np.int64)
    for j in range(1, MAX_DIGITS):
        k += (z >> (4 * j)) > 0
    first = np.cumsum(k) - k
    digits = np.zeros(int(k.sum()), dtype=np.int32)
    for j in range(MAX_DIGITS):
        m = k > j
        digits[first[m] + j] = (z[m] >> (4 * (k[m] - 1 - j))) & 15
    return (k - 1).astype(np.int32), digits


def _from_digits(k: np.ndarray, digits: np.ndarray) -> np.ndarray:
    """Invert :func:`_to_digits` given the digit counts ``k``."""
    first = np.cumsum(k) - k
    z = np.zeros(k.shape, dtype=np.int64)
    for j in range(MAX_DIGITS):
        m = k > j
        z[m] = (z[m] << 4) | digits[first[m] + j]
    return z
