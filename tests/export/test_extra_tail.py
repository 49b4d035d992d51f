"""add-tail: a second task's tail behind the bundle's head, refused behind another head."""

import copy
import shutil

import numpy as np
import onnxruntime as ort
import pytest
import torch

from sc2deploy.bundle import Bundle, file_entries
from sc2deploy.errors import BundleError, ExportError, UsageError
from sc2deploy.export.extra_tail import AddTailOptions, add_tail
from sc2deploy.report.bundle_info import describe
from tests.helpers.reference_models import classification_student, reference_logits, write_student
from tests.helpers.symbols import assert_same_top1


def sibling(seed: int = 11):
    """A student whose head (encoder, entropy bottleneck) is the fixture's, its tail its own."""
    first, other = classification_student(), classification_student(seed=seed)
    other.encoder = copy.deepcopy(first.encoder)
    other.entropy_bottleneck = copy.deepcopy(first.entropy_bottleneck)
    return other.eval()


@pytest.fixture
def bundle(split_bundle, tmp_path):
    shutil.copytree(split_bundle.path, tmp_path / "b")
    return Bundle.open(tmp_path / "b")


@pytest.fixture(scope="module")
def student():
    return sibling()


def checkpoint(tmp_path, model, name="second.pt"):
    write_student(tmp_path / name, model, "sc2bench")
    return tmp_path / name


def test_a_tail_behind_the_same_head_is_added_and_gives_its_logits(bundle, student, tmp_path):
    added = add_tail(AddTailOptions(bundle.path, "second", checkpoint(tmp_path, student)))
    entry = added.manifest["tails"]["second"]
    assert entry["file"] == "tail-second.onnx" and entry["inputs"] == [entry["input"]]
    assert entry["output"] == {"name": "logits", "shape": [1, 10], "dtype": "float32"}
    assert entry["verification"]["top1_identical"] == entry["verification"]["images"] == 2
    assert added.manifest["tail"] == bundle.manifest["tail"]  # the main tail is untouched
    session = ort.InferenceSession(str(added.file(entry["file"])),
                                   providers=["CPUExecutionProvider"])
    got, want = [], []
    for symbols in added.reference()["symbols"]:
        x = symbols[None].astype(np.float32)
        logits = session.run(None, {"symbols": x})[0]
        expected = reference_logits(student, torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-4 * np.abs(expected).max())
        got.append(logits)
        want.append(expected)
    assert_same_top1(want, got)
    assert ("tail second", entry) in list(file_entries(added.manifest))
    assert "\ntail second  tail-second.onnx: symbols [1, 8, 15, 15] -> logits [1, 10]" in \
        describe(added)


def test_a_tail_behind_another_head_is_refused_and_the_bundle_is_unchanged(bundle, tmp_path):
    before = {p.name: p.read_bytes() for p in bundle.path.iterdir()}
    with pytest.raises(ExportError, match="its head differs from bundle .* in encoder.0.weight"
                                          ".*symbols it was not trained on"):
        add_tail(AddTailOptions(bundle.path, "other",
                                checkpoint(tmp_path, classification_student(seed=11))))
    assert {p.name: p.read_bytes() for p in bundle.path.iterdir()} == before


@pytest.mark.parametrize("name", ["tail", "default", "Upper", "a/b", "", "x" * 33])
def test_bad_names_are_refused(bundle, tmp_path, name):
    with pytest.raises(UsageError, match="expected 1-32 characters of a-z 0-9 _ -"):
        add_tail(AddTailOptions(bundle.path, name, tmp_path / "never-read.pt"))


def test_an_existing_name_needs_replace_and_a_modified_file_is_detected(bundle, student,
                                                                         tmp_path):
    ckpt = checkpoint(tmp_path, student)
    add_tail(AddTailOptions(bundle.path, "second", ckpt))
    with pytest.raises(UsageError, match="already has a tail named 'second'; pass --replace"):
        add_tail(AddTailOptions(bundle.path, "second", ckpt))
    replaced = add_tail(AddTailOptions(bundle.path, "second", ckpt, replace=True))
    assert sorted(replaced.manifest["tails"]) == ["second"]
    path = replaced.file("tail-second.onnx")
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="tail second: file .*tail-second.onnx was modified"):
        Bundle.open(bundle.path)



def test_a_bq_bundle_gets_a_bq_tail(tmp_path):
    from tests.helpers.reference_models import bq_student
    from sc2deploy.export import ExportOptions, export_bundle
    from sc2deploy.preprocess import sample_images

    first, second, other = bq_student(), bq_student(seed=9), bq_student(seed=9)
    second.bottleneck.encoder = copy.deepcopy(first.bottleneck.encoder)
    for name, model in (("first", first), ("second", second), ("other", other)):
        torch.save({"model": model.state_dict()}, tmp_path / f"{name}.pt")
    bundle = export_bundle(ExportOptions(model="bq6", checkpoint=tmp_path / "first.pt",
                                         out=tmp_path / "b", input_size=64,
                                         images=sample_images()[:2]))
    entry = add_tail(AddTailOptions(bundle.path, "bq-two", tmp_path / "second.pt")
                     ).manifest["tails"]["bq-two"]
    assert [i["name"] for i in entry["inputs"]] == ["symbols", "scale", "zero_point"]
    assert entry["verification"]["top1_identical"] == entry["verification"]["images"] == 2
    with pytest.raises(ExportError, match="its head differs .* encoder.0.weight"):
        add_tail(AddTailOptions(bundle.path, "bq-three", tmp_path / "other.pt"))


def test_a_bundle_without_a_main_tail_gets_a_named_one(student, tmp_path):
    from sc2deploy.export import ExportOptions, export_bundle
    from sc2deploy.preprocess import sample_images
    from sc2deploy.serving.service import _tasks

    body = {f"bottleneck_layer.{k}": v for k, v in classification_student().state_dict().items()
            if k.split(".")[0] in ("encoder", "entropy_bottleneck", "decoder")}
    torch.save({"model": body}, tmp_path / "head.pt")
    bundle = export_bundle(ExportOptions(model="entropic_student", checkpoint=tmp_path / "head.pt",
                                         out=tmp_path / "b", input_size=64,
                                         images=sample_images()[:2]))
    assert "reason" in bundle.manifest["tail"] and _tasks(bundle) == ["decoder"]
    added = add_tail(AddTailOptions(bundle.path, "only", checkpoint(tmp_path, student)))
    assert _tasks(added) == ["tail:only"]  # serve: the named tail, not the decoder
