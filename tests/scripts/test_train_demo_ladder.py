"""scripts/train_demo_ladder.py on tiny settings: the whole recipe runs, writes published
checkpoints that ``export`` loads with its tail, a teacher ONNX, and --resume keeps what is done.
The shipped ladder itself: published key names, ordered β, within the package's size budget."""

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "train_demo_ladder.py"
TINY = ["--betas", "4", "0.5", "--channels", "4", "--decoder-width", "8",
        "--train-per-class", "2", "--eval-per-class", "1", "--teacher-epochs", "1",
        "--stage1-steps", "3", "--stage1-warm-steps", "2", "--stage2-epochs", "1",
        "--aux-steps", "2", "--crop", "64", "--batch", "4", "--threads", "1",
        "--stage2-views", "2"]
PUBLISHED = ("backbone.bottleneck_layer.encoder.0.weight", "backbone.bottleneck_layer.encoder.1.gamma",
             "backbone.bottleneck_layer.entropy_bottleneck.matrices.0",
             "backbone.bottleneck_layer.entropy_bottleneck.quantiles",
             "backbone.bottleneck_layer.entropy_bottleneck._quantized_cdf",
             "backbone.bottleneck_layer.decoder.4.weight", "backbone.layer2.0.conv1.weight",
             "backbone.layer4.0.downsample.1.running_var", "fc.weight")


def train(out: Path, *extra: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(SCRIPT), *TINY, "--out", str(out),
                             "--work", str(out / "work"), *extra],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("ladder")
    return out, train(out)


def test_tiny_ladder_writes_published_checkpoints_and_a_teacher(trained):
    import onnxruntime as ort
    import torch

    out, result = trained
    points = sorted(p.name for p in (out / "demo_ladder").iterdir())
    assert points == ["demo-beta0.5.pt", "demo-beta4.pt"]
    with torch.serialization.safe_globals([argparse.Namespace]):
        ckpt = torch.load(out / "demo_ladder" / "demo-beta4.pt", weights_only=True)
    assert set(ckpt) == {"model", "optimizer", "lr_scheduler", "best_value", "args"}
    assert set(PUBLISHED) <= set(ckpt["model"]) and ckpt["args"].beta == 4.0
    assert ckpt["model"]["backbone.bottleneck_layer.entropy_bottleneck._cdf_length"].numel() == 4
    session = ort.InferenceSession(str(out / "demo_teacher.onnx"),
                                   providers=["CPUExecutionProvider"])
    logits = session.run(None, {"image": np.zeros((1, 3, 224, 224), np.float32)})[0]
    assert logits.shape == (1, 10)
    assert "β=0.5: held-out top-1" in result.stdout and "β=4: held-out top-1" in result.stdout


def test_export_loads_a_trained_point_with_its_tail(trained, tmp_path):
    from sc2deploy.export import ExportOptions, export_bundle
    from sc2deploy.preprocess import sample_images

    out, _ = trained
    bundle = export_bundle(ExportOptions(model="entropic_student", out=tmp_path / "b",
                                         checkpoint=out / "demo_ladder" / "demo-beta0.5.pt",
                                         images=sample_images()[:2]))
    assert bundle.model["latent"]["shape"] == [4, 28, 28]  # stride 8: conv4/2 last
    assert bundle.manifest["prior"]["tables_source"] == "checkpoint"
    assert bundle.manifest["tail"]["output"]["shape"] == [1, 10]
    assert bundle.manifest["provenance"]["checkpoint"]["key_prefix"] == "backbone.bottleneck_layer."


def test_resume_keeps_the_teacher_and_finished_points(trained):
    out, _ = trained
    files = [out / "demo_teacher.onnx", out / "demo_ladder" / "demo-beta0.5.pt",
             out / "demo_ladder" / "demo-beta4.pt"]
    before = {p: p.read_bytes() for p in files}
    result = train(out, "--resume")
    assert {p: p.read_bytes() for p in files} == before
    assert "teacher loaded from" in result.stdout and "demo-beta4.pt exists" in result.stdout


def test_the_shipped_ladder_loads_with_published_names_within_its_size():
    from sc2deploy.export.checkpoint import bottleneck_state, load_state_dict
    from sc2deploy.specs import DEMO_DEFAULT_POINT, DEMO_LADDER_DIR, demo_ladder

    ladder = demo_ladder()
    assert len(ladder) >= 4 and DEMO_DEFAULT_POINT in ladder
    betas = [float(p[len("demo-beta"):]) for p in ladder]
    assert betas == sorted(betas)
    size = sum(p.stat().st_size for p in DEMO_LADDER_DIR.iterdir())
    size += (DEMO_LADDER_DIR.parent / "demo_teacher.onnx").stat().st_size
    assert size <= 6e6, f"the ladder and teacher take {size / 1e6:.2f} MB (budget 6 MB)"
    for point in ladder:
        raw = load_state_dict(DEMO_LADDER_DIR / f"{point}.pt")
        assert set(PUBLISHED) <= set(raw), point
        assert bottleneck_state(raw, "fp")[1] == "backbone.bottleneck_layer."
