"""The raw layer: the C coder writes constriction's words, case after case."""

import pickle

import numpy as np
import pytest

from sc2deploy.codec import constriction_available, raw_decode, raw_encode
from sc2deploy.errors import CodecError

needs_constriction = pytest.mark.skipif(
    not constriction_available(), reason="constriction is not installed on this platform")

# (symbols per channel, pmf per channel, words written by constriction 0.5.0)
GOLDEN = [
    ([[0, 1, 2, 1]], [[0.2, 0.5, 0.3]], [498216161]),
    ([[3, 3, 0, 1, 2] * 4, [0, 0, 1]], [[0.1, 0.2, 0.3, 0.4], [0.999, 0.001]],
     [3622245085, 1354824496]),
    ([[1] * 40], [[1 - 1e-7, 1e-7]],  # improbable symbols: long runs of held-back words
     [4294967295, 4261412866, 4294967295, 4279959551, 4294967295, 4279959551, 4294967295,
      4294967295, 4294967295, 4294967295, 4279369727, 4294967295, 4286185471, 4294967295,
      4294967295, 4294967295, 4294967295, 4293197823, 4294967295, 4293459967, 4294967295,
      4294967295, 4294967295, 4294967295, 4291166207, 4294967295, 4288610303, 4294967295,
      1467351040]),
    ([[0] * 300], [[1 - 1e-7, 1e-7]], [0]),
    ([list(range(16)) * 3], [[1 / 16] * 16],
     [19088743, 2279813938, 573780787, 858993458, 573780787, 858993458, 554696704]),
    ([[]], [[0.5, 0.5]], []),
    ([[1, 0, 1]], [[1.0, 0.0]], [4294967295, 4244570115]),  # a zero entry is still codable
]


def _arrays(symbols, pmfs):
    return ([np.array(s, dtype=np.int32) for s in symbols],
            [np.array(p, dtype=np.float64) for p in pmfs])


@pytest.mark.parametrize("coder", ["c", pytest.param("constriction", marks=needs_constriction)])
@pytest.mark.parametrize("symbols,pmfs,words", GOLDEN)
def test_golden_bitstreams(coder, symbols, pmfs, words):
    sym, pmf = _arrays(symbols, pmfs)
    out = raw_encode(sym, pmf, coder)
    assert out.dtype == np.uint32 and out.tolist() == words
    decoded = raw_decode(np.array(words, dtype=np.uint32), [len(s) for s in symbols], pmf, coder)
    assert [d.tolist() for d in decoded] == symbols


def _random_pmf(rng, n):
    kind = rng.integers(5)
    if kind == 0:
        p = rng.exponential(size=n) ** 6  # skewed
    elif kind == 1:
        p = np.ones(n)  # flat
    elif kind == 2:
        p = rng.dirichlet(np.full(n, 0.05)) + 1e-12  # few dominant symbols, many tiny
    elif kind == 3:
        p = np.full(n, 1e-9)
        p[rng.integers(n)] = 1.0  # extremely peaked
    else:
        p = rng.random(n) * rng.choice([0.5, 3.0, 1e-20])  # not normalized
    return p


def _random_case(rng):
    pmfs, symbols = [], []
    for _ in range(int(rng.integers(1, 6))):
        n = int(rng.integers(2, 2001))
        p = _random_pmf(rng, n)
        m = int(rng.integers(0, 2000))
        if rng.random() < 0.5:
            s = rng.choice(n, size=m, p=p / p.sum())
        else:  # any symbol, including very improbable ones (the "escape" regime)
            s = rng.integers(0, n, size=m)
        pmfs.append(p.astype(np.float64))
        symbols.append(s.astype(np.int32))
    return symbols, pmfs


@needs_constriction
def test_c_and_constriction_agree_on_1000_random_cases():
    rng = np.random.default_rng(20261122)
    mismatches = 0
    for _ in range(1000):
        symbols, pmfs = _random_case(rng)
        words_c = raw_encode(symbols, pmfs, "c")
        words_k = raw_encode(symbols, pmfs, "constriction")
        sizes = [s.size for s in symbols]
        back_c = raw_decode(words_k, sizes, pmfs, "c")
        back_k = raw_decode(words_c, sizes, pmfs, "constriction")
        same = np.array_equal(words_c, words_k) and all(
            np.array_equal(a, b) and np.array_equal(a, c)
            for a, b, c in zip(symbols, back_c, back_k))
        mismatches += not same
    assert mismatches == 0


@pytest.mark.parametrize("symbols,pmfs,match", [
    ([np.array([0], np.int32)], [np.array([0.5, 0.5], np.float32)], "float64"),
    ([np.array([0], np.int32)], [np.array([1.0])], "at least 2 entries"),
    ([np.array([0], np.int32)], [np.array([0.5, np.nan])], "NaN"),
    ([np.array([0], np.int32)], [np.array([0.5, -0.1, 0.6])], "negative"),
    ([np.array([0], np.int32)], [np.array([0.0, 0.0])], "cannot be normalized"),
    ([np.array([2], np.int32)], [np.array([0.5, 0.5])], r"symbol 2 is outside \[0, 2\)"),
    ([np.array([0], np.int64)], [np.array([0.5, 0.5])], "int32"),
    ([np.array([0], np.int32)], [], "1 symbol arrays but 0 pmfs"),
])
def test_invalid_input_is_refused(symbols, pmfs, match):
    with pytest.raises(CodecError, match=match):
        raw_encode(symbols, pmfs, "c")


def test_unknown_coder():
    with pytest.raises(CodecError, match="unknown coder 'ans'; known coders: constriction, c"):
        raw_encode([], [], "ans")


@pytest.mark.parametrize("coder", ["c", pytest.param("constriction", marks=needs_constriction)])
def test_decoding_garbage_gives_symbols_or_the_codec_error(coder):
    pmf = np.array([0.7, 0.2, 0.1])
    invalid = np.array([2630408506, 506206201, 1299800593, 2525847255, 3372974474], np.uint32)
    with pytest.raises(CodecError, match="invalid compressed data"):
        raw_decode(invalid, [50], [pmf], coder)
    rng = np.random.default_rng(3)
    for _ in range(300):
        words = rng.integers(0, 2**32, size=int(rng.integers(0, 6)), dtype=np.uint64)
        try:
            out = raw_decode(words.astype(np.uint32), [50], [pmf], coder)
        except CodecError as exc:
            assert "invalid compressed data" in str(exc)
        else:
            assert out[0].size == 50 and out[0].min() >= 0 and out[0].max() < 3


def _edge_cases(rng):
    """Zero channels, empty channels, 2-entry alphabets, many channels, improbable symbols."""
    yield [], []
    yield [np.zeros(0, np.int32)] * 3, [rng.random(int(n)) + 0.1 for n in (2, 50, 1999)]
    for _ in range(40):
        symbols, pmfs = [], []
        for _ in range(int(rng.integers(1, 13))):
            n = int(rng.choice([2, 2, 3, int(rng.integers(2, 2000))]))
            m = int(rng.choice([0, 1, int(rng.integers(0, 3001))]))
            pmfs.append(_random_pmf(rng, n).astype(np.float64))
            symbols.append(rng.integers(0, n, size=m).astype(np.int32))
        yield symbols, pmfs


@needs_constriction
def test_c_matches_constriction_on_empty_channels_and_2_entry_alphabets():
    rng = np.random.default_rng(21)
    for symbols, pmfs in _edge_cases(rng):
        sizes = [s.size for s in symbols]
        words = raw_encode(symbols, pmfs, "c")
        assert np.array_equal(words, raw_encode(symbols, pmfs, "constriction"))
        for coder in ("c", "constriction"):
            back = raw_decode(words, sizes, pmfs, coder)
            assert all(np.array_equal(a, b) for a, b in zip(back, symbols))


@pytest.mark.parametrize("view", [
    lambda a: np.repeat(a, 2)[::2],  # strided: coded the checked way
    lambda a: np.frombuffer(a.tobytes(), a.dtype),  # read-only
    lambda a: pickle.loads(pickle.dumps(a)),  # an equal dtype that is another object
], ids=["strided", "read-only", "unpickled"])
def test_arrays_of_every_layout_give_the_same_words(view):
    symbols, pmfs = _arrays([[3, 3, 0, 1, 2] * 4, [0, 0, 1]], [[0.1, 0.2, 0.3, 0.4], [0.999, 0.001]])
    words = raw_encode([view(s) for s in symbols], [view(p) for p in pmfs], "c")
    assert words.tolist() == [3622245085, 1354824496]
    back = raw_decode(view(words), [20, 3], [view(p) for p in pmfs], "c")
    assert [b.tolist() for b in back] == [[3, 3, 0, 1, 2] * 4, [0, 0, 1]]


def test_the_checked_way_names_the_channel_after_good_ones():
    good = np.array([0.5, 0.5])
    ok = np.array([0, 1], np.int32)
    with pytest.raises(CodecError, match="channel 1: pmf has NaN, infinite or negative entries"):
        raw_encode([ok, ok], [good, np.array([0.5, np.nan])], "c")
    with pytest.raises(CodecError, match=r"channel 2: symbol 3 is outside \[0, 3\)"):
        raw_encode([ok, ok, np.array([0, 3], np.int32)], [good, good, np.ones(3)], "c")
    with pytest.raises(CodecError, match="channel 1: pmf sums to 5e-301 and cannot be normalized"):
        raw_decode(np.zeros(2, np.uint32), [2, 2], [good, np.array([5e-301, 0.0])], "c")
    with pytest.raises(CodecError, match="channel 1: negative size -1"):
        raw_decode(np.zeros(2, np.uint32), [2, -1], [good, good], "c")


@needs_constriction
def test_a_sum_just_above_the_checks_limit_is_still_coded():
    # The C call refuses sums below 2e-300 (a margin over the checks' 1e-300); the checked
    # way then codes them, with constriction's words.
    symbols, pmfs = [np.array([0, 1, 1], np.int32)], [np.array([1e-300, 5e-301])]
    words = raw_encode(symbols, pmfs, "c")
    assert np.array_equal(words, raw_encode(symbols, pmfs, "constriction"))
    assert raw_decode(words, [3], pmfs, "c")[0].tolist() == [0, 1, 1]


def test_sizes_may_be_any_integers():
    symbols, pmfs = _arrays([[0, 1, 2, 1]], [[0.2, 0.5, 0.3]])
    for size in (4, np.int64(4), np.uint8(4)):
        assert raw_decode(np.array([498216161], np.uint32), [size], pmfs, "c")[0].tolist() == [
            0, 1, 2, 1]
    symbols = [np.arange(200, dtype=np.int32) % 3] * 2  # uint8 sizes whose sum overflows uint8
    words = raw_encode(symbols, pmfs * 2, "c")
    back = raw_decode(words, np.array([200, 200], np.uint8), pmfs * 2, "c")
    assert all(np.array_equal(a, b) for a, b in zip(back, symbols))
