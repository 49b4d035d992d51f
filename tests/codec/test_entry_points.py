"""The C coder's CPython entry points give the ctypes path's words and symbols, input by input."""

import numpy as np
import pytest

from sc2deploy.codec import c_backend
from sc2deploy.codec.c_backend import CBackend

pytestmark = pytest.mark.skipif(
    c_backend._entry_points is None,
    reason="sc2deploy.codec._rangecoder_py is not built here (optional: setup.py)")


def _cases(rng):
    yield [], []
    yield [np.zeros(0, np.int32)] * 2, [np.array([0.5, 0.5]), np.ones(300)]
    for _ in range(300):
        symbols, pmfs = [], []
        for _ in range(int(rng.integers(1, 6))):
            n = int(rng.choice([2, 3, 63, 64, 65, int(rng.integers(2, 2000))]))
            m = int(rng.choice([0, 1, 10, int(rng.integers(0, 3001))]))
            pmf = rng.random(n) ** 3
            pmf[rng.random(n) < 0.1] = 0.0
            pmf[0] += 1e-3
            pmfs.append(pmf)
            symbols.append(rng.integers(0, n, size=m).astype(np.int32))
        yield symbols, pmfs


def test_entry_points_and_ctypes_write_and_read_the_same():
    fast, plain = CBackend(), CBackend(entry_points=False)
    rng = np.random.default_rng(20261207)
    for symbols, pmfs in _cases(rng):
        words = fast.raw_encode(symbols, pmfs)
        assert words.dtype == np.uint32 and words.flags.writeable
        assert np.array_equal(words, plain.raw_encode(symbols, pmfs))
        sizes = [s.size for s in symbols]
        back = fast.raw_decode(words, sizes, pmfs)
        assert all(np.array_equal(a, b) for a, b in zip(back, symbols))
        assert all(np.array_equal(a, b) for a, b in zip(back, plain.raw_decode(words, sizes, pmfs)))


@pytest.mark.parametrize("symbols,pmfs", [
    ([np.array([0, 1], np.int64)], [np.array([0.5, 0.5])]),  # int64 symbols
    ([np.array([0, 1], np.int32)], [np.array([0.5, 0.5], np.float32)]),  # float32 pmf
    ([np.arange(4, dtype=np.int32)[::2]], [np.array([0.5, 0.5])]),  # strided
    ([np.array([0, 1], ">i4")], [np.array([0.5, 0.5])]),  # big-endian
    ([np.array([[0, 1]], np.int32)], [np.array([0.5, 0.5])]),  # 2-D
    ([np.array([2], np.int32)], [np.array([0.5, 0.5])]),  # outside the alphabet
    ([np.array([0], np.int32)], [np.array([0.5, np.nan])]),  # NaN
    ([[0, 1]], [[0.5, 0.5]]),  # lists, not arrays
    ([np.array([0], np.int32)], []),  # counts differ
])
def test_what_the_entry_points_do_not_take_goes_the_checked_way(symbols, pmfs):
    assert c_backend._entry_points.encode_channels(pmfs, symbols) is None


def test_garbage_words_and_sizes_never_crash():
    fast = c_backend._entry_points
    rng = np.random.default_rng(5)
    pmfs = [np.array([0.7, 0.2, 0.1]), np.ones(100)]
    for _ in range(500):
        words = rng.integers(0, 2**32, size=int(rng.integers(0, 8)), dtype=np.uint64)
        sizes = [int(rng.integers(0, 200)), int(rng.integers(0, 200))]
        out = fast.decode_channels(pmfs, sizes, words.astype(np.uint32))
        if out is not None:
            assert out.dtype == np.int32 and out.size == sum(sizes)
            assert out[:sizes[0]].max(initial=0) < 3 and out[sizes[0]:].max(initial=0) < 100
            assert out.min(initial=0) >= 0
    words = np.zeros(2, np.uint32)
    for sizes in ([-1, 4], [2**62, 1], ["2", 1], [None, 1], [1]):  # [1]: 2 pmfs
        assert fast.decode_channels(pmfs, sizes, words) is None
    assert fast.decode_channels(pmfs, [1, 2], np.zeros(2, np.int32)) is None  # int32 words
    assert fast.decode_channels(pmfs, [1, 2], words[::2]) is not None  # 1 word: a view is fine
    with pytest.raises(TypeError, match="2 arguments"):
        fast.encode_channels(pmfs)
    with pytest.raises(TypeError, match="3 arguments"):
        fast.decode_channels(pmfs, [1, 2])


def test_uint8_sizes_that_wrap_in_python_decode_the_ctypes_way():
    pmfs = [np.ones(5), np.ones(7)]
    symbols = [np.arange(200, dtype=np.int32) % 5, np.arange(59, dtype=np.int32) % 7]
    words = CBackend().raw_encode(symbols, pmfs)
    back = CBackend().raw_decode(words, [np.uint8(200), np.uint8(59)], pmfs)
    assert [b.tolist() for b in back] == [s.tolist() for s in symbols]
