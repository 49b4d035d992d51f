"""Every return code of the C coder has a name (that of rangecoder.c) and a message."""

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
