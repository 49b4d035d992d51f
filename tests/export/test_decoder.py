"""The decoder ONNX (server side) equals CompressAI's own decoder on the bundle's symbols."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from sc2deploy.errors import BundleError
from sc2deploy.export import ExportOptions, export_bundle
from sc2deploy.preprocess import sample_images
from tests.helpers.reference_models import compressai_bottleneck, write_checkpoint


@pytest.fixture(scope="module")
def decoder_bundle(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dec")
    model = compressai_bottleneck(channels=8, seed=3, decoder=True)
    write_checkpoint(tmp / "student.pt", model, "backbone.bottleneck_layer.")
    bundle = export_bundle(ExportOptions(model="entropic_student", out=tmp / "b",
                                         checkpoint=tmp / "student.pt", input_size=64,
                                         images=sample_images()[:3]))
    return model, bundle


def assert_decoder_matches(model, bundle) -> None:
    """decoder.onnx on the bundle's reference symbols equals CompressAI's decoder."""
    session = ort.InferenceSession(str(bundle.file(bundle.manifest["decoder"]["file"])),
                                   providers=["CPUExecutionProvider"])
    eb = model.entropy_bottleneck
    for symbols in bundle.reference()["symbols"]:
        s = torch.from_numpy(symbols[None].astype(np.float32))
        with torch.no_grad():
            # clone: CompressAI 1.2.8 dequantize adds the means in place to float inputs
            expected = model.decoder(eb.dequantize(s.clone(), eb._get_medians())).numpy()
        got = session.run(None, {"symbols": s.numpy()})[0]
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_decoder_onnx_matches_compressai(decoder_bundle):
    model, bundle = decoder_bundle
    entry = bundle.manifest["decoder"]
    assert entry["input"]["shape"] == [1, 8, 15, 15]
    assert entry["output"]["shape"] == [1, 16, 16, 16]
    assert_decoder_matches(model, bundle)


def test_coarse_latent_decoder_upsamples_as_compressai(tmp_path):
    model = compressai_bottleneck(channels=6, seed=4, decoder=True, coarse=True)
    write_checkpoint(tmp_path / "student.pt", model, "backbone.bottleneck_layer.")
    bundle = export_bundle(ExportOptions(model="entropic_student", out=tmp_path / "b",
                                         checkpoint=tmp_path / "student.pt", input_size=64,
                                         images=sample_images()[:2]))
    entry = bundle.manifest["decoder"]
    assert entry["input"]["shape"] == [1, 6, 8, 8]
    assert entry["output"]["shape"] == [1, 12, 16, 16]
    assert_decoder_matches(model, bundle)


def test_decoder_file_is_hashed(decoder_bundle):
    from sc2deploy.bundle import Bundle

    _, bundle = decoder_bundle
    path = bundle.file(bundle.manifest["decoder"]["file"])
    original = path.read_bytes()
    try:
        path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        with pytest.raises(BundleError, match="decoder"):
            Bundle.open(bundle.path)
    finally:
        path.write_bytes(original)


def test_head_only_checkpoint_has_no_decoder(head_only_bundle):
    assert "decoder" not in head_only_bundle.manifest
    assert "file" not in head_only_bundle.manifest["tail"]
