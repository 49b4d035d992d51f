"""Range-coder backends: constriction, and sc2deploy's portable C coder (same bytes).

A backend turns a float64 pmf into a *model*, encodes segments
``(symbols, model)`` in order into uint32 words, and decodes them back with a
stateful decoder (segments may depend on what was decoded before). Its
``raw_encode``/``raw_decode`` code independent channels: the C coder in one
call (tables made as it goes), falling back to :func:`encode_checked` and
:func:`decode_checked`, whose checks name any problem.
"""

import importlib.util
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from sc2deploy.errors import CodecError

CODERS = ("constriction", "c")


class ConstrictionBackend:
    """constriction's RangeEncoder with ``Categorical(pmf, perfect=False)``."""

    name = "constriction"

    def __init__(self):
        import constriction

        self._stream = constriction.stream
        self._categorical = constriction.stream.model.Categorical

    def model(self, pmf: np.ndarray):
        return self._categorical(pmf, perfect=False)

    def raw_encode(self, symbols: Sequence[np.ndarray], pmfs: Sequence[np.ndarray]) -> np.ndarray:
        return encode_checked(self, symbols, pmfs)

    def raw_decode(self, words: np.ndarray, sizes: Sequence[int], pmfs: Sequence[np.ndarray]
                   ) -> List[np.ndarray]:
        return decode_checked(self, words, sizes, pmfs)

    def encode(self, segments: Sequence[Tuple[np.ndarray, object]]) -> np.ndarray:
        encoder = self._stream.queue.RangeEncoder()
        for symbols, model in segments:
            if symbols.size:
                encoder.encode(symbols, model)
        return encoder.get_compressed()

    def decoder(self, words: np.ndarray) -> "ConstrictionDecoder":
        return ConstrictionDecoder(self._stream.queue.RangeDecoder(words))


class ConstrictionDecoder:
    def __init__(self, decoder):
        self._decoder = decoder

    def decode(self, model, count: int) -> np.ndarray:
        if count == 0:
            return np.zeros(0, dtype=np.int32)
        try:
            return np.asarray(self._decoder.decode(model, count), dtype=np.int32)
        except (AssertionError, ValueError, RuntimeError, KeyError) as exc:
            raise CodecError(f"invalid compressed data: {exc}") from None


def constriction_available() -> bool:
    try:
        return importlib.util.find_spec("constriction") is not None
    except ImportError:  # a broken or blocked install counts as absent
        return False


# Made once per coder (None: the default), since a raw call takes microseconds.
_BACKENDS: Dict[Optional[str], object] = {}
_U32 = np.dtype(np.uint32)


def get_backend(coder: Optional[str] = None):
    """The backend named ``coder``; by default constriction if installed, else the C coder."""
    try:
        return _BACKENDS[coder]
    except (KeyError, TypeError):  # not made yet, or not a name at all
        pass
    if coder is None:
        backend = get_backend("constriction" if constriction_available() else "c")
    else:
        backend = _make_backend(coder)
    _BACKENDS[coder] = backend
    return backend


def _make_backend(coder: str):
    if coder == "constriction":
        if not constriction_available():
            raise CodecError("coder 'constriction' is not installed (it has no Linux aarch64 "
                             "wheel); use coder='c', which writes identical bytes")
        return ConstrictionBackend()
    if coder == "c":
        from sc2deploy.codec.c_backend import CBackend

        return CBackend()
    raise CodecError(f"unknown coder {coder!r}; known coders: {', '.join(CODERS)}")


def check_pmf(pmf, where: str) -> np.ndarray:
    """A pmf must be a 1-D float64 array of >= 2 entries, finite, non-negative, summing > 0."""
    if not isinstance(pmf, np.ndarray) or pmf.dtype != np.float64:
        got = pmf.dtype if isinstance(pmf, np.ndarray) else type(pmf).__name__
        raise CodecError(f"{where}: pmf must be a numpy float64 array, got {got} "
                         "(float32 tables give different bits)")
    if pmf.ndim != 1 or pmf.size < 2:
        raise CodecError(f"{where}: pmf must be 1-D with at least 2 entries, got shape "
                         f"{pmf.shape}")
    if not np.all(np.isfinite(pmf)) or np.any(pmf < 0):
        raise CodecError(f"{where}: pmf has NaN, infinite or negative entries")
    if not pmf.sum() > 1e-300:
        raise CodecError(f"{where}: pmf sums to {pmf.sum()} and cannot be normalized")
    return pmf


def check_symbols(symbols, pmf: np.ndarray, where: str) -> np.ndarray:
    """Symbols must be a 1-D int32 array of indices into the pmf.

    Like constriction's ``perfect=False`` model, a zero-probability entry still
    gets the smallest fixed-point probability, so its symbol can be coded.
    """
    if not isinstance(symbols, np.ndarray) or symbols.dtype != np.int32 or symbols.ndim != 1:
        got = getattr(symbols, "dtype", type(symbols).__name__)
        raise CodecError(f"{where}: symbols must be a 1-D numpy int32 array, got {got}")
    if symbols.size:
        lo, hi = int(symbols.min()), int(symbols.max())
        if lo < 0 or hi >= pmf.size:
            raise CodecError(f"{where}: symbol {lo if lo < 0 else hi} is outside [0, {pmf.size})")
    return symbols


def raw_encode(symbols: List[np.ndarray], pmfs: List[np.ndarray], coder: Optional[str] = None
               ) -> np.ndarray:
    """Encode channel ``i``'s int32 ``symbols[i]`` with ``pmfs[i]``, in order → uint32 words.

    With ``coder="constriction"`` this is a RangeEncoder fed each channel with
    ``Categorical(pmf, perfect=False)``; ``coder="c"`` returns the same words.
    """
    if len(symbols) != len(pmfs):
        raise CodecError(f"{len(symbols)} symbol arrays but {len(pmfs)} pmfs")
    return get_backend(coder).raw_encode(symbols, pmfs)


def raw_decode(words: np.ndarray, sizes: Sequence[int], pmfs: List[np.ndarray],
               coder: Optional[str] = None) -> List[np.ndarray]:
    """Invert :func:`raw_encode`: ``sizes[i]`` symbols of channel ``i`` with ``pmfs[i]``."""
    if len(sizes) != len(pmfs):
        raise CodecError(f"{len(sizes)} sizes but {len(pmfs)} pmfs")
    if not isinstance(words, np.ndarray) or words.ndim != 1 or (
            words.dtype is not _U32 and words.dtype != _U32):
        raise CodecError("words must be a 1-D numpy uint32 array")
    return get_backend(coder).raw_decode(words, sizes, pmfs)


def encode_checked(backend, symbols: Sequence[np.ndarray], pmfs: Sequence[np.ndarray]
                   ) -> np.ndarray:
    """raw_encode channel by channel, each checked first: the errors of every coder."""
    segments = []
    for i, (sym, pmf) in enumerate(zip(symbols, pmfs)):
        check_pmf(pmf, f"channel {i}")
        segments.append((check_symbols(sym, pmf, f"channel {i}"), backend.model(pmf)))
    return backend.encode(segments)


def decode_checked(backend, words: np.ndarray, sizes: Sequence[int],
                   pmfs: Sequence[np.ndarray]) -> List[np.ndarray]:
    """raw_decode channel by channel, each checked first: the errors of every coder."""
    decoder = backend.decoder(words)
    out = []
    for i, (size, pmf) in enumerate(zip(sizes, pmfs)):
        check_pmf(pmf, f"channel {i}")
        if int(size) < 0:
            raise CodecError(f"channel {i}: negative size {size}")
        out.append(decoder.decode(backend.model(pmf), int(size)))
    return out
