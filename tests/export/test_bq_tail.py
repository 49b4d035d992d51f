"""export writes tail.onnx for BQ students: (symbols, scale, zero_point) → the upstream logits."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from sc2deploy.errors import CheckpointError, UsageError
from sc2deploy.export import ExportOptions, export_bundle
from sc2deploy.export.bq_tail import build_bq_tail
from sc2deploy.preprocess import sample_images
from sc2deploy.targets import load_server_runner
from tests.helpers.reference_models import bq_reference_logits, bq_student
from tests.helpers.symbols import assert_same_top1

CHANNELS = 6


@pytest.fixture(scope="module")
def student():
    return bq_student(channels=CHANNELS)


def _save(path, state, wrap=True):
    torch.save({"model": state} if wrap else state, path)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, student):
    root = tmp_path_factory.mktemp("bq")
    _save(root / "bq.pt", student.state_dict())
    return export_bundle(ExportOptions(model=f"bq{CHANNELS}", checkpoint=root / "bq.pt",
                                       out=root / "b", input_size=64,
                                       images=sample_images()[:6]))


def test_tail_onnx_gives_the_upstream_logits(bundle, student):
    tail = bundle.manifest["tail"]
    assert tail["file"] == "tail.onnx" and len(tail["sha256"]) == 64
    assert [i["name"] for i in tail["inputs"]] == ["symbols", "scale", "zero_point"]
    assert [i["shape"] for i in tail["inputs"]] == [[1, CHANNELS, 9, 9], [1], [1]]
    assert tail["input"] == tail["inputs"][0]
    assert tail["output"] == {"name": "logits", "shape": [1, 10], "dtype": "float32"}
    assert tail["layers"] == ["dequantize", "decoder", "layer3", "layer4", "avgpool", "fc"]
    assert tail["verification"]["top1_identical"] == tail["verification"]["images"] == 6
    head = ort.InferenceSession(str(bundle.file("head.onnx")), providers=["CPUExecutionProvider"])
    server = ort.InferenceSession(str(bundle.file("tail.onnx")),
                                  providers=["CPUExecutionProvider"])
    pre = bundle.preprocessing()
    worst = 0.0
    got, want = [], []
    for path in sample_images():
        symbols, scale, zero_point = head.run(None, {"image": pre(path)})  # what the device sends
        assert symbols.min() >= 0 and symbols.max() <= 255 and zero_point == np.round(zero_point)
        logits = server.run(None, {"symbols": symbols, "scale": scale,
                                   "zero_point": zero_point})[0]
        expected = bq_reference_logits(student, symbols, scale[0], int(zero_point[0])).numpy()
        assert logits.shape == (1, 10)
        got.append(logits)
        want.append(expected)
        worst = max(worst, float(np.abs(logits - expected).max() / np.abs(expected).max()))
    checked = assert_same_top1(want, got, [path.name for path in sample_images()])
    print(f"BQ tail.onnx vs independent torch reference: max relative |Δ| {worst:.1e} over "
          f"{len(sample_images())} images, top-1 identical on the {checked} beyond near ties")
    assert worst < 1e-4


def test_server_runner_takes_the_three_inputs(bundle):
    stored = bundle.reference()
    symbols = stored["symbols"][:1].astype(np.float32)
    side = {"scale": stored["scale"][:1].astype(np.float32),
            "zero_point": stored["zero_point"][:1].astype(np.float32)}
    with load_server_runner(bundle, "tail") as runner:
        assert runner.side_inputs == {"scale": (1,), "zero_point": (1,)}
        logits = runner.infer(symbols, side)
        assert logits.shape == (1, 10) and logits.dtype == np.float32
        with pytest.raises(UsageError, match=r"Input tensor: scale, zero_point \| Missing"):
            runner.infer(symbols)
        with pytest.raises(UsageError, match=r"Input tensor: scale \| Received dtype float64"):
            runner.infer(symbols, {**side, "scale": side["scale"].astype(np.float64)})


def test_a_bq_checkpoint_without_its_tail_exports_head_only(tmp_path, student):
    head_only = {k: v for k, v in student.state_dict().items()
                 if k.startswith("bottleneck.encoder.")}
    _save(tmp_path / "head.pt", head_only)
    b = export_bundle(ExportOptions(model=f"bq{CHANNELS}", checkpoint=tmp_path / "head.pt",
                                    out=tmp_path / "b", input_size=64,
                                    images=sample_images()[:1]))
    assert b.manifest["tail"] == {"reason": "the checkpoint has no decoder (a head-only file)"}
    assert not (b.path / "tail.onnx").exists()
    no_stages = {k: v for k, v in student.state_dict().items() if k.startswith("bottleneck.")}
    _save(tmp_path / "dec.pt", no_stages, wrap=False)
    b = export_bundle(ExportOptions(model=f"bq{CHANNELS}", checkpoint=tmp_path / "dec.pt",
                                    out=tmp_path / "c", input_size=64,
                                    images=sample_images()[:1]))
    assert "no layer3, layer4 and fc" in b.manifest["tail"]["reason"]


def test_a_broken_bq_tail_is_reported_and_does_not_stop_the_head(tmp_path, student):
    state = dict(student.state_dict())
    state["bottleneck.decoder.5.weight"] = torch.zeros(16, 7, 2, 2)
    with pytest.raises(CheckpointError, match=r"decoder.5.weight has shape \[16, 7, 2, 2\], "
                                              r"expected \[16, 16, 2, 2\]"):
        build_bq_tail(state, "bottleneck.", CHANNELS)
    del state["layer4.0.conv1.weight"]
    state["bottleneck.decoder.5.weight"] = student.state_dict()["bottleneck.decoder.5.weight"]
    _save(tmp_path / "partial.pt", {f"module.{k}": v for k, v in state.items()})
    b = export_bundle(ExportOptions(model=f"bq{CHANNELS}", checkpoint=tmp_path / "partial.pt",
                                    out=tmp_path / "b", input_size=64,
                                    images=sample_images()[:1]))
    reason = b.manifest["tail"]["reason"]
    assert reason.startswith("the checkpoint's tail cannot be rebuilt: incomplete classification")
    assert "layer3, layer4 and fc" in reason
    assert b.manifest["artifacts"]["onnx"]["file"] == "head.onnx"


def test_evaluate_runs_on_a_bq_bundle(bundle, student, tmp_path):
    from sc2deploy.measure.evaluate import evaluate, labels_file

    head = ort.InferenceSession(str(bundle.file("head.onnx")), providers=["CPUExecutionProvider"])
    pre = bundle.preprocessing()
    folder = tmp_path / "images"
    folder.mkdir()
    rows = []
    for path in sample_images()[:4]:
        (folder / path.name).write_bytes(path.read_bytes())
        q, scale, zp = head.run(None, {"image": pre(path)})
        expected = bq_reference_logits(student, q, scale[0], zp[0]).numpy()
        rows.append(f"{path.name},{int(np.argmax(expected))}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    data = labels_file(folder, tmp_path / "labels.csv")
    doc = evaluate(bundle.path, data, progress=False)
    row, = doc["targets"]
    assert doc["coder"] == "uint8" and row["target"] == "onnx"
    assert row["top1"]["correct"] == 4 and row["top1_agreement"]["same"] == 4
    assert row["bytes"]["min"] == row["bytes"]["max"] == 4 + 1 + CHANNELS * 9 * 9
    with pytest.raises(UsageError, match="BQ baseline, its latent is sent as uint8"):
        evaluate(bundle.path, data, coder="c", progress=False)


def test_build_gates_a_bq_artifact_on_the_tail(bundle, tmp_path):
    import shutil

    from sc2deploy.builders.build import BuildOptions, build_targets, verify_bundle
    from sc2deploy.targets.gate import TASK_IMAGES

    copy = tmp_path / "b"
    shutil.copytree(bundle.path, copy)
    row, = build_targets(copy, ["onnx-fp16"], BuildOptions(latency_runs=1))
    assert row["rule"].startswith("task:")  # the tail judged it
    assert row["task"]["images"] == TASK_IMAGES
    assert 0 <= row["task"]["kl_mean"] < 1
    rows = {r["target"]: r for r in verify_bundle(copy)}  # fp16 kept or not: CPU-dependent
    fp32 = rows["onnx"]
    assert ("onnx-fp16" in rows) == row["passed"]
    assert fp32["task"]["top1_agree"] == TASK_IMAGES  # fp32: a .5 tie may move a symbol
    assert fp32["task"]["kl_mean"] < 1e-4
