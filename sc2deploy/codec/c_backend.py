"""ctypes binding of sc2deploy's portable C range coder (rangecoder.c); the raw channel
path goes through its CPython entry points (rangecoder_module.c) where they are built."""

import ctypes
import struct
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from sc2deploy.codec.backends import decode_checked, encode_checked
from sc2deploy.errors import CodecError

try:  # optional (setup.py): without it the raw path goes through ctypes
    from sc2deploy.codec import _rangecoder_py as _entry_points
except ImportError:
    _entry_points = None

# Return codes of rangecoder.c (its enum S2C_*): name, and what it means for the caller.
_OK, _BAD_PMF, _BAD_SYMBOL, _OUT_OF_SPACE, _INVALID_DATA = range(5)
CODES = {
    _OK: ("S2C_OK", "success"),
    _BAD_PMF: ("S2C_BAD_PMF", "a pmf cannot be quantized: expected at least 2 entries (and "
               "fewer than 2^24 - 1) whose sum is a positive normal number; check the prior's "
               "tables (sc2deploy info BUNDLE)"),
    _BAD_SYMBOL: ("S2C_BAD_SYMBOL", "a symbol is outside its model's alphabet: expected "
                  "0 <= symbol < the model's size; encode latents with their own bundle's "
                  "prior"),
    _OUT_OF_SPACE: ("S2C_OUT_OF_SPACE", "the output buffer was too small, although sc2deploy "
                    "sizes it for the worst case: a bug; report it with the latent's shape"),
    _INVALID_DATA: ("S2C_INVALID_DATA", "invalid compressed data: the stream does not decode "
                    "under this prior (decoder left its interval, too many escape digits, or "
                    "a value beyond int32); decode with the bundle that encoded it"),
}
LUT_SIZE = 257  # 2^LUT_BITS + 1 with LUT_BITS = 8 in rangecoder.c
_LIB = None


def _find_library() -> Path:
    here = Path(__file__).resolve().parent
    found = sorted(p for p in here.glob("_rangecoder.*") if p.suffix in (".so", ".pyd", ".dylib"))
    if not found:
        raise CodecError(
            "the C coder is not built (no sc2deploy/codec/_rangecoder*.so): reinstall sc2deploy "
            "where a C compiler is available, e.g. pip install --force-reinstall --no-binary "
            "sc2deploy sc2deploy")
    return found[0]


def library() -> ctypes.CDLL:
    """Load the C coder once and declare its signatures."""
    global _LIB
    if _LIB is None:
        lib = ctypes.CDLL(str(_find_library()))
        p, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32
        lib.s2c_quantize.argtypes = [p, i64, p]
        lib.s2c_encode.argtypes = [p, p, p, i64, p, p, p, p, i64, p, p]
        lib.s2c_decoder_size.restype = i64
        lib.s2c_decoder_init.argtypes = [p, p, i64]
        lib.s2c_decoder_init.restype = None
        lib.s2c_decode.argtypes = [p, p, i32, p, i64]
        lib.s2c_encode_latent.argtypes = [p, i32, i64, p, p, p, p, p, p, p, p, i64, p]
        lib.s2c_decode_latent.argtypes = [p, i64, i32, i64, p, p, p, p, p, p, p, i64, p, p]
        lib.s2c_build_lut.argtypes = [p, i32, p]
        lib.s2c_build_lut.restype = None
        # No argtypes: called only with a bytes object and ctypes buffers, which ctypes passes
        # as pointers as they are (declared argtypes cost ~0.3 us each, about what a short
        # channel takes to code).
        lib.s2c_encode_channels.restype = i64
        lib.s2c_decode_channels.restype = i64
        _LIB = lib
    return _LIB


def _ptr(arr: np.ndarray):
    return arr.ctypes.data_as(ctypes.c_void_p)


def code_error(code: int, call: str) -> CodecError:
    """The :class:`CodecError` for a non-zero return code of the C function ``call``."""
    if code not in CODES:
        return CodecError(f"{call} returned code {code}, expected one of {sorted(CODES)}: the "
                          "compiled _rangecoder library does not match this sc2deploy; "
                          "reinstall sc2deploy")
    name, meaning = CODES[code]
    return CodecError(f"{meaning} ({call}: {name})")


class CModel:
    """A pmf quantized to constriction's fixed-point CDF (n + 1 uint32 entries)."""

    def __init__(self, pmf: np.ndarray):
        pmf = np.ascontiguousarray(pmf, dtype=np.float64)
        self.size = int(pmf.size)
        self.cdf = np.empty(self.size + 1, dtype=np.uint32)
        code = library().s2c_quantize(_ptr(pmf), self.size, _ptr(self.cdf))
        if code == _BAD_PMF:
            raise CodecError(f"pmf with {pmf.size} entries cannot be quantized: it needs at "
                             "least 2 entries and a sum that is a positive normal number "
                             "(s2c_quantize: S2C_BAD_PMF)")
        if code != _OK:
            raise code_error(code, "s2c_quantize")


def _pack(models):
    """All models' cdfs in one array, and where each one starts."""
    if not models:
        return np.zeros(1, np.uint32), np.zeros(1, np.int64)
    cdfs = np.concatenate([m.cdf for m in models])
    starts = np.cumsum([0] + [m.size + 1 for m in models[:-1]]).astype(np.int64)
    return cdfs, starts


_F64, _I32 = np.dtype(np.float64), np.dtype(np.int32)
# _BYTES.from_buffer(array) is a pointer to a numpy array for ~0.4 us (array.ctypes costs
# ~1 us; a ctypes array type of each length would make a class per call).
_BYTES = ctypes.c_char * 0
_SPARE_WORDS = 64  # results keep up to this many unused words rather than pay for a copy
STACK_TABLE = 64  # as in rangecoder.c: tables up to this size need no scratch


def _scratch_words(lengths: List[int]) -> int:
    """The channel functions' scratch, 2 max(n) + 2 doubles, in 4-byte words (or none)."""
    longest = max(lengths) if lengths else 0
    return 4 * longest + 4 if longest > STACK_TABLE else 0


def _split(symbols: np.ndarray, counts: Sequence[int]) -> List[np.ndarray]:
    """Views of one array, a channel each."""
    out, start = [], 0
    for count in counts:
        out.append(symbols[start:start + count])
        start += count
    return out


def pack_channels(lengths: Sequence[int], counts: Sequence[int], arrays: Sequence[np.ndarray],
                  *extra: int) -> bytes:
    """The input of s2c_encode_channels (no extra) or s2c_decode_channels (extra: w).

    ``lengths`` are the pmfs' (n in rangecoder.c), ``counts`` the channels' symbols (m);
    ``arrays`` the pmfs, then the symbols or the words.

    Raises ValueError or BufferError for an array that is not contiguous, struct.error
    for a number beyond int64.
    """
    header = (len(lengths), *lengths, *counts, *extra)
    return b"".join((struct.pack(f"={len(header)}q", *header), *arrays))


class CBackend:
    """The C coder: same words as constriction's RangeEncoder + Categorical(perfect=False).

    Raw channels go to C in one call each way, packed into one bytes object::

        symbols, pmfs --join--> bytes --s2c_encode_channels--> words (quantizing as it goes)

    so a call costs a few microseconds plus time linear in the tables and symbols; through
    the CPython entry points (``_rangecoder_py``, where built) about one microsecond, with
    the packing done in C. Input that call refuses (or cannot take as it is: other dtypes,
    strided views) goes the checked way, channel by channel, which names the problem.
    """

    name = "c"

    def __init__(self, entry_points=True):
        self._lib = library()
        self._fast = _entry_points if entry_points else None

    def raw_encode(self, symbols: Sequence[np.ndarray], pmfs: Sequence[np.ndarray]) -> np.ndarray:
        words = self._encode_channels(symbols, pmfs)
        return words if words is not None else encode_checked(self, symbols, pmfs)

    def raw_decode(self, words: np.ndarray, sizes: Sequence[int], pmfs: Sequence[np.ndarray]
                   ) -> List[np.ndarray]:
        if self._fast is not None:
            out = self._decode_fast(words, sizes, pmfs)
        else:
            out = self._decode_channels(words, sizes, pmfs)
        return out if out is not None else decode_checked(self, words, sizes, pmfs)

    def _encode_channels(self, symbols, pmfs) -> Optional[np.ndarray]:
        """s2c_encode_channels, or None where the checked way must take the input."""
        if self._fast is not None:
            words = self._fast.encode_channels(pmfs, symbols)
            return None if words is None else np.frombuffer(words, np.uint32)
        lengths, counts = [], []
        try:
            for sym, pmf in zip(symbols, pmfs):  # these dtypes, in native byte order
                if not ((pmf.dtype is _F64 or pmf.dtype == _F64) and pmf.ndim == 1
                        and (sym.dtype is _I32 or sym.dtype == _I32) and sym.ndim == 1):
                    return None
                lengths.append(pmf.size)
                counts.append(sym.size)
            packed = pack_channels(lengths, counts, (*pmfs, *symbols))
        except (AttributeError, TypeError, ValueError, BufferError):  # not arrays, or strided
            return None
        scratch = _scratch_words(lengths)
        buffer = np.empty(scratch + sum(counts) + 3, np.uint32)  # scratch first: aligned
        ref = _BYTES.from_buffer(buffer)
        n_words = self._lib.s2c_encode_channels(packed, ref, ctypes.byref(ref, 4 * scratch))
        if n_words < 0:
            return None
        words = buffer[scratch:scratch + n_words]
        return words if buffer.size - n_words <= _SPARE_WORDS else words.copy()

    def _decode_channels(self, words, sizes, pmfs) -> Optional[List[np.ndarray]]:
        """s2c_decode_channels, or None where the checked way must take the input."""
        lengths = []
        try:
            for pmf in pmfs:
                if not ((pmf.dtype is _F64 or pmf.dtype == _F64) and pmf.ndim == 1):
                    return None
                lengths.append(pmf.size)
            counts = list(map(int, sizes))  # Python ints: numpy ones could overflow in sums
            packed = pack_channels(lengths, counts, (*pmfs, words), words.size)
            scratch = _scratch_words(lengths)
            buffer = np.empty(scratch + sum(counts), np.int32)  # the C call refuses counts < 0
        except (AttributeError, TypeError, ValueError, BufferError, OverflowError,
                MemoryError, struct.error):  # not arrays, strided, or counts beyond int64
            return None
        ref = _BYTES.from_buffer(buffer)
        if self._lib.s2c_decode_channels(packed, ref, ctypes.byref(ref, 4 * scratch)):
            return None  # invalid data included: the checked way says where
        symbols = buffer[scratch:] if scratch <= _SPARE_WORDS else buffer[scratch:].copy()
        return _split(symbols, counts)

    def _decode_fast(self, words, sizes, pmfs) -> Optional[List[np.ndarray]]:
        """The entry point's decode_channels, or None where the checked way must take it."""
        out = self._fast.decode_channels(pmfs, sizes, words)
        if out is None or len(sizes) == 1:
            return None if out is None else [out]
        return _split(out, list(map(int, sizes)))  # Python ints: numpy uint8 ones would wrap

    def model(self, pmf: np.ndarray) -> CModel:
        return CModel(pmf)

    def encode(self, segments: Sequence[Tuple[np.ndarray, CModel]]) -> np.ndarray:
        models, index = [], {}
        for _, model in segments:
            if id(model) not in index:
                index[id(model)] = len(models)
                models.append(model)
        cdfs, starts = _pack(models)
        sizes = np.array([m.size for m in models] or [0], dtype=np.int32)
        symbols = (np.concatenate([s for s, _ in segments]).astype(np.int32, copy=False)
                   if segments else np.zeros(0, np.int32))
        seg_len = np.array([s.size for s, _ in segments] or [0], dtype=np.int64)
        seg_model = np.array([index[id(m)] for _, m in segments] or [0], dtype=np.int32)
        out = np.empty(symbols.size + 3, dtype=np.uint32)
        out_len, bad = ctypes.c_int64(0), ctypes.c_int64(-1)
        code = library().s2c_encode(
            _ptr(symbols), _ptr(seg_len), _ptr(seg_model), len(segments), _ptr(cdfs),
            _ptr(starts), _ptr(sizes), _ptr(out), out.size, ctypes.byref(out_len),
            ctypes.byref(bad))
        if code == _BAD_SYMBOL:
            raise CodecError(f"symbol {int(symbols[bad.value])} at position {bad.value} is "
                             "outside its model's alphabet (s2c_encode: S2C_BAD_SYMBOL)")
        if code != _OK:
            raise code_error(code, "s2c_encode")
        return out[: out_len.value].copy()

    def decoder(self, words: np.ndarray) -> "CDecoder":
        return CDecoder(words)

    def latent_coder(self, prior, count_pmf: np.ndarray, digit_pmf: np.ndarray):
        return CLatentCoder(prior, count_pmf, digit_pmf)


class CLatentCoder:
    """Whole latents with escapes in one C call each way (layout of docs/bitstream.md)."""

    def __init__(self, prior, count_pmf: np.ndarray, digit_pmf: np.ndarray):
        models = [CModel(prior.pmf(c)) for c in range(prior.channels)]
        self._cdfs, self._starts = _pack(models)
        self._offsets = np.ascontiguousarray(prior.offsets, dtype=np.int32)
        self._lengths = np.ascontiguousarray(prior.pmf_lengths, dtype=np.int32)
        self._luts = np.empty((len(models), LUT_SIZE), dtype=np.uint32)
        for model, lut in zip(models, self._luts):
            library().s2c_build_lut(_ptr(model.cdf), model.size, _ptr(lut))
        self._count_cdf = CModel(count_pmf).cdf
        self._digit_cdf = CModel(digit_pmf).cdf

    def encode(self, flat: np.ndarray) -> np.ndarray:
        flat = np.ascontiguousarray(flat, dtype=np.int32)
        channels, per_channel = flat.shape
        scratch = np.empty(flat.size, dtype=np.uint64)
        out = np.empty(11 * flat.size + 3, dtype=np.uint32)  # symbol + count + 9 digits each
        out_len = ctypes.c_int64(0)
        code = library().s2c_encode_latent(
            _ptr(flat), channels, per_channel, _ptr(self._offsets), _ptr(self._lengths),
            _ptr(self._cdfs), _ptr(self._starts), _ptr(self._count_cdf), _ptr(self._digit_cdf),
            _ptr(scratch), _ptr(out), out.size, ctypes.byref(out_len))
        if code != _OK:
            raise code_error(code, "s2c_encode_latent")
        return out[: out_len.value].copy()

    def decode(self, words: np.ndarray, channels: int, per_channel: int, digit_limit: int):
        words = np.ascontiguousarray(words, dtype=np.uint32)
        out = np.empty((channels, per_channel), dtype=np.int32)
        scratch = np.empty(channels * per_channel, dtype=np.uint8)
        code = library().s2c_decode_latent(
            _ptr(words), words.size, channels, per_channel, _ptr(self._offsets),
            _ptr(self._lengths), _ptr(self._cdfs), _ptr(self._starts), _ptr(self._count_cdf),
            _ptr(self._digit_cdf), _ptr(self._luts), digit_limit, _ptr(scratch), _ptr(out))
        if code != _OK:
            raise code_error(code, "s2c_decode_latent")
        return out


class CDecoder:
    """Stateful decoder over a uint32 word array (kept alive by this object)."""

    def __init__(self, words: np.ndarray):
        lib = library()
        self._words = np.ascontiguousarray(words, dtype=np.uint32)
        self._state = ctypes.create_string_buffer(int(lib.s2c_decoder_size()))
        lib.s2c_decoder_init(self._state, _ptr(self._words), self._words.size)

    def decode(self, model: CModel, count: int) -> np.ndarray:
        out = np.empty(int(count), dtype=np.int32)
        if not count:
            return out
        code = library().s2c_decode(self._state, _ptr(model.cdf), model.size, _ptr(out),
                                    int(count))
        if code == _INVALID_DATA:
            raise CodecError("invalid compressed data: the range decoder left its interval "
                             "(s2c_decode: S2C_INVALID_DATA); decode with the prior that "
                             "encoded it")
        if code != _OK:
            raise code_error(code, "s2c_decode")
        return out
