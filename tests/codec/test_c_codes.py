"""Every return code of the C coder has a name (that of rangecoder.c) and a message; the one-call
channel functions return the code that fits each bad input."""

import ctypes
import re
from pathlib import Path

import numpy as np
import pytest

from sc2deploy.codec import c_backend
from sc2deploy.codec.c_backend import CODES, CBackend, code_error
from sc2deploy.errors import CodecError

SOURCE = Path(c_backend.__file__).with_name("rangecoder.c")


def test_the_names_are_those_of_the_c_enum():
    enum = re.search(r"enum \{([^}]*)\}", SOURCE.read_text()).group(1)
    in_c = {int(value): name for name, value in re.findall(r"(S2C_\w+) = (\d+)", enum)}
    assert in_c == {code: name for code, (name, _) in CODES.items()}


def test_the_binding_knows_which_tables_live_on_the_c_stack():
    assert int(re.search(r"#define STACK_TABLE (\d+)", SOURCE.read_text()).group(1)) == (
        c_backend.STACK_TABLE)


@pytest.mark.parametrize("code,match", [
    (1, r"a pmf cannot be quantized: .* \(s2c_encode: S2C_BAD_PMF\)"),
    (2, r"outside its model's alphabet: expected 0 <= symbol .* \(s2c_encode: S2C_BAD_SYMBOL\)"),
    (3, r"output buffer was too small.*report it .* \(s2c_encode: S2C_OUT_OF_SPACE\)"),
    (4, r"invalid compressed data: .* \(s2c_encode: S2C_INVALID_DATA\)"),
    (9, r"s2c_encode returned code 9, expected one of \[0, 1, 2, 3, 4\]: .* reinstall"),
])
def test_each_code_says_what_happened(code, match):
    error = code_error(code, "s2c_encode")
    assert isinstance(error, CodecError)
    assert re.search(match, str(error)), str(error)


def test_a_bad_symbol_names_the_code():
    backend = CBackend()
    with pytest.raises(CodecError, match=r"symbol 5 at position 1 is outside its model's "
                                         r"alphabet \(s2c_encode: S2C_BAD_SYMBOL\)"):
        backend.encode([(np.array([0, 5], np.int32), backend.model(np.array([0.5, 0.5])))])


def _encode_channels(symbols, pmfs, lengths=None, counts=None):
    """s2c_encode_channels' return value and output (lengths, counts: what the header says)."""
    counts = [s.size for s in symbols] if counts is None else counts
    lengths = [p.size for p in pmfs] if lengths is None else lengths
    packed = c_backend.pack_channels(lengths, counts, (*pmfs, *symbols))
    scratch = np.empty(2 * max([p.size for p in pmfs], default=1) + 2, np.float64)
    out = np.empty(sum(s.size for s in symbols) + 3, np.uint32)
    return c_backend.library().s2c_encode_channels(packed, scratch.ctypes.data_as(ctypes.c_void_p),
                                                   out.ctypes.data_as(ctypes.c_void_p)), out


def _decode_channels(words, counts, pmfs):
    packed = c_backend.pack_channels([p.size for p in pmfs], counts, (*pmfs, words), words.size)
    scratch = np.empty(2 * max(p.size for p in pmfs) + 2, np.float64)
    out = np.empty(max(sum(counts), 1), np.int32)
    return c_backend.library().s2c_decode_channels(packed, scratch.ctypes.data_as(ctypes.c_void_p),
                                                   out.ctypes.data_as(ctypes.c_void_p)), out


BAD_PMF, BAD_SYMBOL, INVALID_DATA = 1, 2, 4


@pytest.mark.parametrize("pmf", [
    [0.5, np.nan], [0.5, np.inf], [0.5, -0.1, 0.6], [0.0, 0.0],
    [1e-300, 5e-301],  # below the one-call path's margin (2e-300) over the checks' 1e-300
    [1e308, 1e308],  # sums to infinity
    [1.0],  # fewer than 2 entries
], ids=["nan", "inf", "negative", "zero-sum", "tiny-sum", "overflowing-sum", "one-entry"])
def test_the_channel_functions_refuse_bad_pmfs(pmf):
    good = np.array([0.5, 0.5])
    pmfs = [good, np.array(pmf, np.float64)]
    symbols = [np.array([0, 1], np.int32), np.zeros(0, np.int32)]  # even an empty channel's
    assert _encode_channels(symbols, pmfs)[0] == -BAD_PMF
    assert _decode_channels(np.zeros(3, np.uint32), [2, 0], pmfs)[0] == -BAD_PMF


def test_an_alphabet_of_2_to_the_24_is_refused_before_its_pmf_is_read():
    assert _encode_channels([np.zeros(0, np.int32)], [], lengths=[2**24 - 1])[0] == -BAD_PMF


@pytest.mark.parametrize("symbol", [-1, 3])
def test_the_channel_functions_refuse_bad_symbols(symbol):
    symbols = [np.array([0, symbol], np.int32)]
    assert _encode_channels(symbols, [np.ones(3)])[0] == -BAD_SYMBOL


def test_a_negative_count_is_refused():
    assert _encode_channels([], [np.ones(3)], counts=[-1])[0] == -BAD_SYMBOL


def test_the_channel_functions_write_the_golden_words_and_refuse_invalid_data():
    pmf = np.array([0.2, 0.5, 0.3])
    code, out = _encode_channels([np.array([0, 1, 2, 1], np.int32)], [pmf])
    assert code == 1 and out[:1].tolist() == [498216161]
    code, out = _decode_channels(np.array([498216161], np.uint32), [4], [pmf])
    assert code == 0 and out.tolist() == [0, 1, 2, 1]
    invalid = np.array([2630408506, 506206201, 1299800593, 2525847255, 3372974474], np.uint32)
    assert _decode_channels(invalid, [50], [np.array([0.7, 0.2, 0.1])])[0] == -INVALID_DATA
    assert _decode_channels(np.zeros(0, np.uint32), [50], [pmf])[0] in (0, -INVALID_DATA)
