"""Entropy tables: sc2deploy's computation equals CompressAI's update(), bit for bit."""

import numpy as np
import pytest
import torch

import compressai_ref
from reference_models import compressai_bottleneck
from sc2deploy.errors import PriorError
from sc2deploy.export.heads import build_head
from sc2deploy.export.tables import pmf_to_quantized_cdf
from sc2deploy.specs import get_spec


def _random_pmfs(rng, count):
    for i in range(count):
        n = int(rng.integers(1, 300))
        kind = i % 3
        if kind == 0:  # skewed, many tiny probabilities that need stolen frequency
            p = rng.exponential(size=n) ** 6
        elif kind == 1:  # flat
            p = np.ones(n)
        else:  # peaked with exact zeros
            p = rng.random(n) * (rng.random(n) < 0.3)
            p[rng.integers(n)] = 1.0
        yield (p / p.sum()).astype(np.float32)


def test_quantized_cdf_equals_compressai_cxx():
    _, _, cxx = compressai_ref.load()
    rng = np.random.default_rng(0)
    for pmf in _random_pmfs(rng, 300):
        expected = np.array(cxx.pmf_to_quantized_cdf(pmf.tolist(), 16), dtype=np.int64)
        np.testing.assert_array_equal(pmf_to_quantized_cdf(pmf), expected)


def test_quantized_cdf_rejects_bad_pmf():
    with pytest.raises(PriorError, match="finite, non-negative"):
        pmf_to_quantized_cdf(np.array([0.5, np.nan], dtype=np.float32))
    with pytest.raises(PriorError, match="rounds to zero"):
        pmf_to_quantized_cdf(np.zeros(4, dtype=np.float32))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_computed_tables_equal_compressai_update(seed):
    ref = compressai_bottleneck(channels=12, seed=seed)
    eb = ref.entropy_bottleneck
    state = {k: v for k, v in ref.state_dict().items()}
    for name in ("_offset", "_quantized_cdf", "_cdf_length"):
        state[f"entropy_bottleneck.{name}"] = torch.zeros(0, dtype=torch.int32)
    head = build_head(get_spec("entropic_student"), state)
    assert head.tables_source == "computed"
    np.testing.assert_array_equal(head.prior.quantized_cdf, eb._quantized_cdf.numpy())
    np.testing.assert_array_equal(head.prior.offsets, eb._offset.numpy())
    np.testing.assert_array_equal(head.prior.cdf_lengths, eb._cdf_length.numpy())
    np.testing.assert_array_equal(head.prior.medians, eb.quantiles[:, 0, 1].detach().numpy())


def test_stored_tables_are_used_even_when_they_differ(tmp_path):
    ref = compressai_bottleneck(channels=4, seed=3)
    state = dict(ref.state_dict())
    stored = state["entropy_bottleneck._quantized_cdf"].clone()
    state["entropy_bottleneck.quantiles"] = state["entropy_bottleneck.quantiles"] + 0.0
    state["entropy_bottleneck.matrices.0"] = state["entropy_bottleneck.matrices.0"] * 3
    head = build_head(get_spec("entropic_student"), state)
    assert head.tables_source == "checkpoint"
    np.testing.assert_array_equal(head.prior.quantized_cdf, stored.numpy())


def test_partial_tables_are_an_error():
    ref = compressai_bottleneck(channels=4, seed=3)
    state = dict(ref.state_dict())
    state["entropy_bottleneck._offset"] = torch.zeros(0, dtype=torch.int32)
    from sc2deploy.errors import CheckpointError

    with pytest.raises(CheckpointError, match="not \\['_offset'\\]"):
        build_head(get_spec("entropic_student"), state)
