"""With a tail, reduced-precision artifacts are gated on what reaches the server's classifier."""

import shutil

import pytest

from sc2deploy.builders.build import BuildOptions, build_targets, format_table, verify_bundle
from sc2deploy.bundle import Bundle
from sc2deploy.errors import FidelityError


@pytest.fixture()
def bundle(student_bundle, tmp_path):
    shutil.copytree(student_bundle.path, tmp_path / "b")
    return tmp_path / "b"


def test_reduced_precision_is_judged_on_the_task_fp32_on_symbols(bundle):
    rows = {r["target"]: r for r in build_targets(bundle, ["onnx", "onnx-fp16", "onnx-int8"],
                                                  BuildOptions(latency_runs=1, search=True))}
    assert rows["onnx"]["rule"] == "symbols: exact bar .5 ties"
    for name in ("onnx-fp16", "onnx-int8"):
        row = rows[name]
        task = row["task"]
        assert row["rule"].startswith("task: top-1 equal on >= 100 % of 16 images")
        assert task["images"] == 16 and 0 <= task["kl_mean"] <= task["kl_max"]
        assert 0 < task["top1_ci95_pct"][0] <= task["top1_agreement_pct"] <= 100
        assert row["passed"] == (task["top1_agree"] == 16 and task["kl_mean"] <= 0.01)
        assert "decoder_relative_mse" in row
    entry = Bundle.open(bundle).manifest["artifacts"]["onnx-fp16"]
    assert entry["gate"]["rule"].startswith("task") and entry["fidelity"]["task"]["images"] == 16
    table = format_table(verify_bundle(bundle))
    assert "top-1" in table and "(task)" in table and "(symbols)" in table


def test_a_task_refusal_says_what_reached_the_server(bundle):
    before = sorted(p.name for p in bundle.iterdir())
    row, = build_targets(bundle, ["onnx-int8"], BuildOptions(latency_runs=1, max_kl=0.0,
                                                             min_top1=100.0))
    assert not row["passed"]
    assert "the server's top-1 equals the fp32 pipeline's on" in row["error"]
    assert "mean KL <= 0 nats" in row["error"]
    assert sorted(p.name for p in bundle.iterdir()) == before


def test_symbols_gate_can_be_chosen_and_task_needs_a_tail(bundle, demo_bundle, tmp_path):
    row, = build_targets(bundle, ["onnx-fp16"], BuildOptions(latency_runs=1, gate="symbols"))
    assert row["rule"] == "symbols: >= 99.9 % equal"
    with pytest.raises(FidelityError, match="--gate task needs a bundle with a tail"):
        BuildOptions(gate="task").verdict("fp16", {"agreement_pct": 100.0})
    copy = shutil.copytree(demo_bundle.path, tmp_path / "verified")  # verify records this CPU
    rows = verify_bundle(copy)
    assert all(r["rule"].startswith("symbols") for r in rows if "rule" in r)
