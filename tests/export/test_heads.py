"""Head modules: folded GDN reproduces CompressAI exactly; the BQ quantizer matches torchdistill's."""

import numpy as np
import pytest
import torch
from torch import nn

from sc2deploy.errors import CheckpointError
from sc2deploy.export.heads import build_head
from sc2deploy.export.layers import GDN1, FoldedGDN1, effective_gdn_constants
from sc2deploy.specs import get_spec
from tests.helpers.reference_models import (bq_head_state, compressai_bottleneck, reference_symbols,
                                            torchdistill_quantize)


def test_folded_head_is_bit_identical_to_compressai():
    ref = compressai_bottleneck(channels=24, seed=5)
    head = build_head(get_spec("entropic_student"), dict(ref.state_dict()))
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = head.module(x)
    expected = reference_symbols(ref, x).float()
    assert ours.shape == (2, 24, 23, 23)
    assert torch.equal(ours, expected)
    assert ours.abs().max() > 2, "the reference latent should spread over several symbols"


def test_coarse_latent_head_is_bit_identical_to_compressai():
    ref = compressai_bottleneck(channels=12, seed=6, coarse=True)
    head = build_head(get_spec("entropic_student"), dict(ref.state_dict()))
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = head.module(x)
    assert ours.shape == (2, 12, 12, 12)
    assert torch.equal(ours, reference_symbols(ref, x).float())


def test_latent_conv_of_another_kernel_is_refused():
    state = dict(compressai_bottleneck(channels=8, seed=1).state_dict())
    state["encoder.4.weight"] = torch.zeros(8, 16, 3, 3)
    with pytest.raises(CheckpointError, match=r"encoder.4.weight has a \(3, 3\) kernel; "
                       r"expected 2 x 2 .* or 4 x 4"):
        build_head(get_spec("entropic_student"), state)


def test_gdn_folding_matches_the_trainable_layer():
    gdn = GDN1(6)
    with torch.no_grad():
        gdn.beta.uniform_(-0.1, 2)  # some values below the bound
        gdn.gamma.uniform_(-0.05, 0.3)
    beta, gamma = effective_gdn_constants(
        gdn.beta, gdn.gamma, gdn.beta_reparam.lower_bound.bound, gdn.beta_reparam.pedestal,
        gdn.gamma_reparam.lower_bound.bound, gdn.gamma_reparam.pedestal)
    folded = FoldedGDN1(beta, gamma)
    x = torch.randn(1, 6, 8, 8)
    with torch.no_grad():
        assert torch.equal(folded(x), gdn(x))
    assert float(beta.detach().min()) > 0


@pytest.mark.parametrize("name,channels", [("bq2", 2), ("bq12", 12)])
def test_bq_quantizer_matches_published_formula(name, channels):
    head = build_head(get_spec(name), bq_head_state(channels))
    assert head.prior is None and head.output_names == ("symbols", "scale", "zero_point")
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        q, scale, zero_point = head.module(x)
        y = head.module.encoder(x)
    ref_q, ref_scale, ref_zp = torchdistill_quantize(y)
    assert q.shape == (1, channels, 29, 29)
    assert torch.equal(q, ref_q.float())
    assert float(scale) == float(ref_scale) and int(zero_point) == ref_zp
    assert float(q.min()) == 0 and float(q.max()) >= 254  # zero point is truncated


def test_bq_wrong_channel_count_is_reported():
    with pytest.raises(CheckpointError, match=r"encoder.6.weight has shape \[3, 64, 2, 2\], "
                                              r"expected \[6, 64, 2, 2\]"):
        build_head(get_spec("bq6"), bq_head_state(3))


def test_fp_head_latent_channels_follow_the_checkpoint():
    ref = compressai_bottleneck(channels=32, seed=2)  # the ResNeSt-269e variant
    head = build_head(get_spec("ladon"), dict(ref.state_dict()))
    assert head.prior.channels == 32
    assert isinstance(head.module.encoder, nn.Sequential)
    assert np.all(head.prior.cdf_lengths >= 3)


def test_bundle_head_state_rebuilds_the_reference(demo_bundle, few_images):
    from sc2deploy.export.heads import head_from_arrays

    module = head_from_arrays("fp", demo_bundle.torch_head_arrays())
    x = demo_bundle.preprocessing()(few_images[0])
    with torch.no_grad():
        symbols = module(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(symbols[0], demo_bundle.reference()["symbols"][0])


def test_bq_head_state_roundtrip():
    from sc2deploy.export.heads import head_arrays, head_from_arrays

    head = build_head(get_spec("bq3"), bq_head_state(3))
    rebuilt = head_from_arrays("bq", head_arrays(head.module))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(head.module(x), rebuilt(x)):
            assert torch.equal(a, b)
