"""Prior tables: validation, storage without pickle, information content."""

import numpy as np
import pytest

from sc2deploy.errors import PriorError
from sc2deploy.prior import PriorTables


def _tables(cdf_rows):
    width = max(len(r) for r in cdf_rows)
    cdf = np.zeros((len(cdf_rows), width), dtype=np.int32)
    for i, r in enumerate(cdf_rows):
        cdf[i, : len(r)] = r
    return PriorTables(medians=np.zeros(len(cdf_rows), np.float32),
                       offsets=np.array([-((len(r) - 3) // 2) for r in cdf_rows], np.int32),
                       quantized_cdf=cdf,
                       cdf_lengths=np.array([len(r) for r in cdf_rows], np.int32))


def test_roundtrip_and_pmf(tmp_path):
    t = _tables([[0, 1000, 60000, 65535, 65536], [0, 30000, 65000, 65536]])
    path = tmp_path / "prior.npz"
    t.save(path)
    loaded = PriorTables.load(path)
    assert loaded.digest() == t.digest()
    pmf = loaded.pmf(0)
    assert pmf.dtype == np.float64 and pmf.size == 4 and pmf.sum() == 1.0
    np.testing.assert_array_equal(pmf, np.array([1000, 59000, 5535, 1]) / 65536)
    assert list(loaded.pmf_lengths) == [3, 2]


@pytest.mark.parametrize("rows,match", [
    ([[0, 100, 100, 65536]], "strictly increasing"),
    ([[1, 100, 200, 65536]], "start at 0"),
    ([[0, 100, 200, 65535]], "end at 65536"),
])
def test_invalid_cdf_is_rejected(rows, match):
    with pytest.raises(PriorError, match=match):
        _tables(rows)


def test_nan_median_is_rejected():
    with pytest.raises(PriorError, match="NaN"):
        PriorTables(medians=np.array([np.nan], np.float32), offsets=np.zeros(1, np.int32),
                    quantized_cdf=np.array([[0, 10, 65536]], np.int32),
                    cdf_lengths=np.array([3], np.int32))


def test_bits_per_symbol_counts_tail_for_escapes():
    t = _tables([[0, 32768, 65535, 65536]])  # offsets [0]: symbols 0,1 in support
    sym = np.array([0, 1, 5000], dtype=np.int32).reshape(1, 1, 3)
    expected = (1 + np.log2(65536 / 32767) + 16) / 3
    assert t.bits_per_symbol(sym) == pytest.approx(expected)
    with pytest.raises(PriorError, match="does not fit a prior with 1 channels"):
        t.bits_per_symbol(np.zeros((2, 3, 3)))


def test_pickled_prior_file_is_refused(tmp_path):
    path = tmp_path / "prior.npz"
    np.savez(path, medians=np.array([object()], dtype=object))
    with pytest.raises(PriorError, match="cannot read prior tables"):
        PriorTables.load(path)
