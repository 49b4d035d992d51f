"""export writes tail.onnx for classification students: symbols → the upstream model's logits."""

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from sc2deploy.export import ExportOptions, export_bundle
from sc2deploy.preprocess import sample_images
from tests.helpers.reference_models import (classification_student, compressai_bottleneck,
                                            reference_logits, write_checkpoint, write_student)
from tests.helpers.symbols import assert_same_top1


@pytest.fixture(scope="module")
def student():
    return classification_student()


@pytest.mark.parametrize("layout,model", [("sc2bench", "entropic_student"),
                                          ("wacv22", "entropic_student"), ("sc2bench", "ladon")])
def test_tail_onnx_gives_the_upstream_logits(tmp_path, student, layout, model):
    ckpt = tmp_path / "student.pt"
    write_student(ckpt, student, layout)
    images = sample_images()[:4]
    bundle = export_bundle(ExportOptions(model=model, checkpoint=ckpt, out=tmp_path / "b",
                                         images=images))
    tail = bundle.manifest["tail"]
    assert tail["file"] == "tail.onnx" and len(tail["sha256"]) == 64
    assert tail["input"]["shape"] == [1, *bundle.model["latent"]["shape"]]
    assert tail["inputs"] == [tail["input"]] and tail["input"]["name"] == "symbols"
    assert tail["output"] == {"name": "logits", "shape": [1, 10], "dtype": "float32"}
    assert tail["verification"]["top1_identical"] == tail["verification"]["images"] == 4
    head = ort.InferenceSession(str(bundle.file("head.onnx")), providers=["CPUExecutionProvider"])
    server = ort.InferenceSession(str(bundle.file(tail["file"])),
                                  providers=["CPUExecutionProvider"])
    pre = bundle.preprocessing()
    got, want = [], []
    for path in images:
        symbols = head.run(None, {"image": pre(path)})[0]  # what the device sends
        logits = server.run(None, {"symbols": symbols})[0]
        expected = reference_logits(student, torch.from_numpy(symbols)).numpy()
        assert logits.shape == (1, 10)
        np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-4 * np.abs(expected).max())
        got.append(logits)
        want.append(expected)
    assert_same_top1(want, got, [path.name for path in images])


def test_heads_without_a_tail_export_as_before_and_say_why(tmp_path):
    ckpt = tmp_path / "head.pt"
    write_checkpoint(ckpt, compressai_bottleneck(channels=8, seed=1, decoder=True),
                     "backbone.body.bottleneck_layer.", tail_keys=False)
    bundle = export_bundle(ExportOptions(model="entropic_student", checkpoint=ckpt,
                                         out=tmp_path / "b", images=sample_images()[:1]))
    assert "not a classification student" in bundle.manifest["tail"]["reason"]
    assert not (bundle.path / "tail.onnx").exists() and "decoder" in bundle.manifest


def test_an_incomplete_tail_does_not_stop_the_head(tmp_path):
    ckpt = tmp_path / "partial.pt"
    write_checkpoint(ckpt, compressai_bottleneck(channels=8, seed=1, decoder=True),
                     "backbone.bottleneck_layer.")  # tail keys: only layer2.0.conv1 and fc
    bundle = export_bundle(ExportOptions(model="entropic_student", checkpoint=ckpt,
                                         out=tmp_path / "b", images=sample_images()[:1]))
    reason = bundle.manifest["tail"]["reason"]
    assert reason.startswith("the checkpoint's tail cannot be rebuilt: incomplete classification")


def test_a_modified_tail_fails_verification(tmp_path, student):
    from sc2deploy.bundle import Bundle
    from sc2deploy.errors import BundleError

    ckpt = tmp_path / "student.pt"
    write_student(ckpt, student, "sc2bench")
    bundle = export_bundle(ExportOptions(model="entropic_student", checkpoint=ckpt,
                                         out=tmp_path / "b", images=sample_images()[:1]))
    data = bytearray(bundle.file("tail.onnx").read_bytes())
    data[-10] ^= 0xFF
    bundle.file("tail.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="tail: file .*tail.onnx was modified"):
        Bundle.open(bundle.path)
    assert json.loads((bundle.path / "manifest.json").read_text())["tail"]["file"] == "tail.onnx"
