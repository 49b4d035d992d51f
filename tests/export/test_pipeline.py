"""export → bundle: onnxruntime symbols equal independent CompressAI references exactly."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from sc2deploy.errors import UsageError
from sc2deploy.export import ExportOptions, export_bundle
from sc2deploy.export.checkpoint import load_state_dict
from sc2deploy.preprocess import sample_images
from sc2deploy.specs import demo_checkpoint
from tests.helpers.reference_models import (bq_head_state, compressai_bottleneck,
                                            reference_pre_round, reference_symbols,
                                            torchdistill_quantize, write_checkpoint)
from tests.helpers.symbols import assert_same_symbols



def _ort_outputs(bundle, inputs):
    session = ort.InferenceSession(str(bundle.file(bundle.manifest["artifacts"]["onnx"]["file"])),
                                   providers=["CPUExecutionProvider"])
    return [session.run(None, {"image": x}) for x in inputs]


def test_demo_bundle_manifest_and_graph(demo_bundle):
    m = demo_bundle.manifest
    assert m["format_version"] == 1
    assert m["model"]["name"] == "entropic_student" and m["model"]["demo"] is True
    inp = m["model"]["input"]
    assert inp["shape"] == [1, 3, 224, 224] and inp["layout"] == "NCHW"
    assert inp["resize"] == 256 and inp["crop"] == [224, 224]
    assert inp["mean"] == [0.485, 0.456, 0.406] and inp["std"] == [0.229, 0.224, 0.225]
    channels = load_state_dict(demo_checkpoint("demo"))[
        "backbone.bottleneck_layer.encoder.4.weight"].shape[0]
    side = 28  # 224 / 8: the demo students' latent conv is conv4/2
    assert m["model"]["latent"]["shape"] == [channels, side, side]
    assert m["prior"]["kind"] == "factorized" and len(m["prior"]["sha256"]) == 64
    art = m["artifacts"]["onnx"]
    assert art["precision"] == "fp32" and art["fidelity"]["mismatches"] == 0
    assert art["fidelity"]["values"] == 32 * channels * side * side
    assert len(m["provenance"]["checkpoint"]["sha256"]) == 64
    assert {"torch", "onnx", "onnxruntime", "sc2deploy"} <= set(m["provenance"]["tools"])
    model = onnx.load(str(demo_bundle.file(art["file"])))
    assert model.opset_import[0].version == 17
    assert not any(n.op_type == "Cast" for n in model.graph.node)
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 224, 224]
    onnx.checker.check_model(model, full_check=True)


def test_demo_latent_is_a_rate_constrained_students(demo_bundle):
    """The default point sends a few hundred bytes per sample image, in few channels."""
    symbols = demo_bundle.reference()["symbols"]
    per_channel = demo_bundle.prior().bits_per_channel(symbols)
    nbytes = per_channel.sum() * symbols.shape[2] * symbols.shape[3] / 8
    assert 100 < nbytes < 5000
    assert 1 <= (per_channel > 0.05).sum() < len(per_channel)


def test_demo_onnx_reproduces_stored_reference(demo_bundle, few_images):
    from sc2deploy.export.heads import head_from_arrays

    pre = demo_bundle.preprocessing()
    inputs = [pre(p) for p in few_images]
    outputs = _ort_outputs(demo_bundle, inputs)
    expected = demo_bundle.reference()["symbols"][: len(few_images)]
    module = head_from_arrays("fp", demo_bundle.torch_head_arrays())
    with torch.no_grad():
        pre_round = [module.pre_round(torch.from_numpy(x)).numpy() for x in inputs]
    assert_same_symbols([e[None] for e in expected], [o[0] for o in outputs], pre_round)


@pytest.mark.parametrize("model,prefix,images,latent", [
    ("entropic_student", "backbone.bottleneck_layer.", 6, [24, 55, 55]),
    ("ladon", "bottleneck_layer.", 2, [24, 103, 103]),
])
def test_independent_reference_checkpoint(tmp_path, model, prefix, images, latent):
    ref = compressai_bottleneck(channels=24, seed=7)
    ckpt = tmp_path / "student.pt"
    write_checkpoint(ckpt, ref, prefix, naming="_matrix{i}")
    paths = sample_images()[:images]
    bundle = export_bundle(ExportOptions(model=model, checkpoint=ckpt, out=tmp_path / "b",
                                         images=paths))
    assert bundle.model["latent"]["shape"] == latent
    pre = bundle.preprocessing()
    inputs = [pre(p) for p in paths]
    expected = [reference_symbols(ref, torch.from_numpy(x)).numpy() for x in inputs]
    pre_round = [reference_pre_round(ref, torch.from_numpy(x)).numpy() for x in inputs]
    got = [o[0] for o in _ort_outputs(bundle, inputs)]
    assert_same_symbols(expected, got, pre_round)  # CompressAI's unfused GDN vs onnxruntime
    prior = bundle.prior()
    eb = ref.entropy_bottleneck
    np.testing.assert_array_equal(prior.quantized_cdf, eb._quantized_cdf.numpy())
    np.testing.assert_array_equal(prior.offsets, eb._offset.numpy())
    np.testing.assert_array_equal(prior.cdf_lengths, eb._cdf_length.numpy())
    np.testing.assert_array_equal(prior.medians, eb.quantiles[:, 0, 1].detach().numpy())


def test_bq_export(tmp_path, few_images):
    ckpt = tmp_path / "bq.pt"
    torch.save({"model": {f"bottleneck.{k}": v for k, v in bq_head_state(6).items()}}, ckpt)
    bundle = export_bundle(ExportOptions(model="bq6", checkpoint=ckpt, out=tmp_path / "b",
                                         images=few_images))
    assert bundle.manifest["prior"]["kind"] == "uint8-minmax" and bundle.prior() is None
    assert bundle.model["latent"]["shape"] == [6, 29, 29]
    pre = bundle.preprocessing()
    x = pre(few_images[0])
    q, scale, zero_point = _ort_outputs(bundle, [x])[0]
    encoder = torch.nn.Sequential(*list(_rebuild_bq(tmp_path / "bq.pt")))
    with torch.no_grad():
        y = encoder(torch.from_numpy(x))
        ref_q, ref_scale, ref_zp = torchdistill_quantize(y)
    # The zero point is floor(v), v = -min(y) / scale, i.e. round(v - 0.5): a tie when v lies
    # within the tie tolerance of an integer (the latent spans 0, so v is not clamped).
    v = float(-y.min() / ref_scale)
    assert 0 < v < 255
    assert_same_symbols([np.array([ref_zp])], [zero_point], [np.array([v - 0.5])])
    zp = int(zero_point[0])  # torch's, or after a tie torch's symbols are taken with this one
    pre_round = (zp + y / ref_scale).clamp(0, 255)  # what torchdistill_quantize rounds
    expected = ref_q if zp == ref_zp else pre_round.round()
    assert_same_symbols([expected.numpy()], [q], [pre_round.numpy()])


def _rebuild_bq(path):
    from sc2deploy.export.checkpoint import bottleneck_state, load_state_dict
    from sc2deploy.export.heads import build_head
    from sc2deploy.specs import get_spec

    state, _ = bottleneck_state(load_state_dict(path), "bq")
    return build_head(get_spec("bq6"), state).module.encoder


def test_input_size_override(tmp_path, few_images):
    bundle = export_bundle(ExportOptions(model="demo", input_size=128, out=tmp_path / "b",
                                         images=few_images))
    assert bundle.model["input"]["shape"] == [1, 3, 128, 128]
    assert bundle.model["input"]["resize"] == 146
    assert bundle.model["latent"]["shape"][1:] == [16, 16]  # 128 / 8


def test_existing_bundle_needs_force_and_failures_leave_nothing(tmp_path, few_images):
    out = tmp_path / "b"
    export_bundle(ExportOptions(model="demo", out=out, images=few_images[:1]))
    with pytest.raises(UsageError, match="--force"):
        export_bundle(ExportOptions(model="demo", out=out, images=few_images[:1]))
    export_bundle(ExportOptions(model="demo", out=out, images=few_images[:1], force=True))
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="not a bundle"):
        export_bundle(ExportOptions(model="demo", out=other, images=few_images[:1], force=True))
    assert (other / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "notes"]


@pytest.mark.parametrize("kwargs,match", [
    ({"model": "resnet"}, "unknown model 'resnet'; known models: demo, demo-beta<β>, "
                          "entropic_student"),
    ({"model": "ladon"}, "needs --checkpoint"),
    ({"model": "demo", "input_size": 8}, "input size 8 is out of range"),
])
def test_bad_options(tmp_path, kwargs, match):
    with pytest.raises(UsageError, match=match):
        export_bundle(ExportOptions(out=tmp_path / "b", **kwargs))


def test_the_exports_check_records_this_cpu(demo_bundle):
    """profile must not call head.onnx unverified on the CPU whose export checked every symbol."""
    from sc2deploy.machine import core_name, here_key, unverified_warning

    art = demo_bundle.manifest["artifacts"]["onnx"]
    (key, entry), = art["fidelity_by_cpu"].items()
    assert key == here_key("onnxruntime", "onnxruntime")
    assert (entry["cpu"], entry["emulated"], entry["images"]) == (core_name(), False,
                                                                  art["fidelity"]["images"])
    assert entry["verdict"]["passed"] and entry["stats"] == art["fidelity"]
    assert unverified_warning(art, "onnx", "onnxruntime", "onnxruntime") is None
