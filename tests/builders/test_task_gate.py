"""With a tail, reduced-precision artifacts are gated on what reaches the server's classifier:
the lower bound of the top-1 agreement's 95 % interval, on >= 200 images by default."""

import shutil

import pytest

from sc2deploy.builders.build import (BuildOptions, Reference, build_targets, fidelity_stats,
                                      format_table, task_images, verify_bundle)
from sc2deploy.bundle import Bundle
from sc2deploy.errors import FidelityError, UsageError
from sc2deploy.builders.build import emulation_indices, subset
from sc2deploy.preprocess import sample_images
from sc2deploy.targets import load_runner
from sc2deploy.targets.gate import MIN_TOP1_PCT, TASK_IMAGES, GateOptions, wilson_interval


@pytest.fixture()
def bundle(student_bundle, tmp_path):
    shutil.copytree(student_bundle.path, tmp_path / "b")
    return tmp_path / "b"


@pytest.fixture()
def tiny(split_bundle, tmp_path):
    """The tiny split student (64 px) with its tail, copied."""
    return shutil.copytree(split_bundle.path, tmp_path / "tiny")


def test_reduced_precision_is_judged_on_the_task_fp32_on_symbols(bundle):
    rows = {r["target"]: r for r in build_targets(
        bundle, ["onnx", "onnx-fp16", "onnx-int8"],
        BuildOptions(latency_runs=1, allow_low_fidelity=True))}  # kept: recorded either way
    assert rows["onnx"]["rule"] == "symbols: exact bar .5 ties"
    assert rows["onnx"]["decision"] == "passed" and rows["onnx"]["images"] >= TASK_IMAGES
    manifest = Bundle.open(bundle).manifest["artifacts"]
    for name in ("onnx-fp16", "onnx-int8"):
        row = rows[name]
        task, evidence = row["task"], row["task_evidence"]
        assert task["images"] == evidence["images"] == TASK_IMAGES >= 200
        assert "generated texture images" in task["source"]
        assert 0 <= task["kl_mean"] <= task["kl_max"]
        lo, hi = (100 * v for v in wilson_interval(task["top1_agree"], task["images"]))
        assert task["top1_ci95_pct"] == evidence["top1_ci95_pct"] == pytest.approx([lo, hi])
        assert lo <= task["top1_agreement_pct"] <= hi
        assert row["rule"].startswith(f"task: 95 % lower bound of the top-1 agreement >= 95 % "
                                      f"(on 200 images: {lo:.1f} %)")
        assert row["passed"] == (lo >= MIN_TOP1_PCT and task["kl_mean"] <= 0.01)
        assert row["decision"] == ("passed" if row["passed"] else "failed" if hi < MIN_TOP1_PCT
                                   or task["kl_mean"] > 0.01 else "undecided")
        assert evidence["flip_rate_not_ruled_out_pct"] == pytest.approx(100 - lo)
        assert "decoder_relative_mse" in row
        gate, recorded = manifest[name]["gate"], manifest[name]["fidelity"]["task"]
        assert gate["rule"] == row["rule"] and gate["decision"] == row["decision"]
        assert recorded["images"] == gate["evidence"]["images"] == 200
        assert recorded["top1_ci95_pct"] == gate["evidence"]["top1_ci95_pct"]
        assert gate["evidence"]["certainty"].startswith(
            f"200 images: top-1 equal on {task['top1_agree']}/200")
    table = format_table(list(rows.values()))
    assert "95 % CI" in table and "(task" in table and "(symbols)" in table
    assert f"onnx-fp16: {rows['onnx-fp16']['task_evidence']['certainty']}" in table
    assert "generated texture images" in table


def test_the_demo_fp16_passes_on_200_images_and_verify_takes_the_same_verdict(demo_bundle,
                                                                              tmp_path):
    path = shutil.copytree(demo_bundle.path, tmp_path / "demo")
    row, = build_targets(path, ["onnx-fp16"], BuildOptions(latency_runs=1))
    assert row["passed"] and row["decision"] == "passed", row.get("error")
    evidence = Bundle.open(path).manifest["artifacts"]["onnx-fp16"]["gate"]["evidence"]
    assert evidence["images"] == 200 and evidence["top1_ci95_pct"][0] >= MIN_TOP1_PCT
    assert "ruled out" in evidence["certainty"]
    rows = {r["target"]: r for r in verify_bundle(path)}  # the host's verify: the same images
    assert rows["onnx-fp16"]["task"]["images"] == 200
    assert rows["onnx-fp16"]["task_evidence"] == evidence
    assert rows["onnx"]["rule"].startswith("symbols") and rows["onnx"]["images"] == 200


def test_a_task_refusal_says_what_reached_the_server(tiny):
    bundle = tiny
    before = sorted(p.name for p in bundle.iterdir())
    row, = build_targets(bundle, ["onnx-fp16"],
                         BuildOptions(latency_runs=1, gate=GateOptions(max_kl=0.0)))
    assert not row["passed"] and row["decision"] == "failed"
    assert "the server's top-1 equals the fp32 pipeline's on" in row["error"]
    assert "mean KL <= 0 nats" in row["error"] and "200 images" in row["error"]
    assert sorted(p.name for p in bundle.iterdir()) == before


def test_fewer_images_are_judged_by_the_same_rule_and_say_what_it_costs(tiny, tmp_path):
    bundle = tiny
    before = sorted(p.name for p in bundle.iterdir())
    few = sample_images()[16:]  # the 16 images the old gate used
    row, = build_targets(bundle, ["onnx-fp16"], BuildOptions(latency_runs=1, task_images=few))
    assert not row["passed"] and row["task"]["images"] == 16
    assert row["task"]["source"].startswith("16 given images")
    if row["task"]["top1_agree"] == 16 and row["task"]["kl_mean"] <= 0.01:
        assert row["decision"] == "undecided"
        assert ("16 images: top-1 equal on 16/16 = 100.0 %, 95 % interval 80.6-100.0 %: too few "
                "images to decide at the 95 % bar (a flip rate up to 19.4 % cannot be ruled out"
                in row["error"])
    assert row["task_evidence"]["certainty"] in row["error"]
    assert sorted(p.name for p in bundle.iterdir()) == before

    # The device side (verify --host, --emulate) judges a subset by the same function.
    shutil.copytree(bundle, tmp_path / "kept")
    build_targets(tmp_path / "kept", ["onnx-fp16"],
                  BuildOptions(latency_runs=1, allow_low_fidelity=True))
    kept = Bundle.open(tmp_path / "kept")
    images = task_images(kept)
    small = subset(Reference(kept, images.images[:8], images.source), emulation_indices(8, 4))
    with load_runner(kept, "onnx-fp16", threads=1) as runner:
        symbols = [runner.infer(x) for x in small.inputs]
    stats = fidelity_stats(kept, small, symbols)
    verdict = BuildOptions().verdict("fp16", stats)
    assert stats["task"]["source"].startswith("4 of 200 generated texture images")
    agree = stats["task"]["top1_agree"]
    assert not verdict["passed"]  # 4 images can refute, never show a pass
    assert verdict["evidence"]["certainty"].startswith(f"4 images: top-1 equal on {agree}/4")
    if agree == 4 and stats["task"]["kl_mean"] <= 0.01:
        assert verdict["decision"] == "undecided"
        assert "a flip rate up to 49.0 % cannot be ruled out" in verdict["evidence"]["certainty"]


def test_symbols_gate_can_be_chosen_and_task_needs_a_tail(bundle, head_only_bundle, tmp_path):
    row, = build_targets(bundle, ["onnx-fp16"],
                         BuildOptions(latency_runs=1, gate=GateOptions("symbols")))
    assert row["rule"] == "symbols: >= 99.9 % equal" and row["images"] == 16
    with pytest.raises(FidelityError, match="--gate task needs a bundle with a tail"):
        GateOptions("task").verdict("fp16", {"agreement_pct": 100.0})
    head_only = shutil.copytree(head_only_bundle.path, tmp_path / "head-only")
    with pytest.raises(UsageError, match=r"--task-images received, but .*head-only has no tail "
                                         r"\(tail.onnx\): .*omit --task-images"):
        build_targets(head_only, ["onnx-fp16"], BuildOptions(task_images=sample_images()[:2]))


def test_a_search_screens_on_a_few_images_and_decides_on_every_image(bundle):
    """Each configuration is screened on SCREEN_IMAGES images (which can refute, not pass);
    the survivors are measured on every image, fastest first, until one passes."""
    from sc2deploy.builders.build import SCREEN_IMAGES
    from sc2deploy.targets.registry import get_target

    row, = build_targets(bundle, ["onnx-fp16"], BuildOptions(latency_runs=1, search=True,
                                                             allow_low_fidelity=True))
    tried = Bundle.open(bundle).manifest["artifacts"]["onnx-fp16"]["options"]["search"]
    assert len(tried) == len(get_target("onnx-fp16").search)
    assert row["task"]["images"] == row["task_evidence"]["images"] == TASK_IMAGES
    confirmed = [t for t in tried if "screened" in t]
    assert confirmed, tried
    assert all(t["images"] == TASK_IMAGES and t["screened"]["images"] == SCREEN_IMAGES
               for t in confirmed)
    assert all(t["images"] == SCREEN_IMAGES for t in tried if "screened" not in t)
    assert sum(t["passed"] for t in confirmed) == row["passed"]  # stops at the first pass
