"""onnx-fp16 --search: which nodes stay fp32 (none, the last Conv, GDN, both), gated."""

import re
import shutil

import numpy as np
import pytest

from sc2deploy.bundle import Bundle
from sc2deploy.builders.build import (BuildOptions, Fp16Options, Int8Options, build_targets,
                                     split_images)
from sc2deploy.targets import get_target, load_runner
from sc2deploy.targets.gate import GateOptions
from sc2deploy.targets.registry import GDN, LAST_CONV

GDN_NODES = [f"/encoder/encoder.{i}/{op}" for i in (1, 3)
             for op in ("Abs", "Conv", "Reciprocal", "Constant", "Mul", "Mul_1")]


@pytest.fixture()
def bundle_copy(demo_bundle, tmp_path):
    dst = tmp_path / "bundle"
    shutil.copytree(demo_bundle.path, dst)
    return dst


def test_markers_resolve_to_nodes_of_the_exported_graph(demo_bundle):
    import onnx

    from sc2deploy.builders.onnx_build import keep_float_nodes

    model = onnx.load(str(demo_bundle.file(demo_bundle.manifest["artifacts"]["onnx"]["file"])))
    assert keep_float_nodes(model, (GDN,)) == GDN_NODES
    assert keep_float_nodes(model, (LAST_CONV, "<first Conv>")) == [
        "/encoder/encoder.0/Conv", "/encoder/encoder.4/Conv"]
    assert keep_float_nodes(model, ("Reciprocal",)) == [
        "/encoder/encoder.1/Reciprocal", "/encoder/encoder.3/Reciprocal"]
    assert keep_float_nodes(model, ()) == []


def test_the_search_space_is_declared_on_the_record():
    assert get_target("onnx-fp16").search == (
        Fp16Options(), Fp16Options(keep_float=(LAST_CONV,)), Fp16Options(keep_float=(GDN,)),
        Fp16Options(keep_float=(LAST_CONV, GDN)))


def test_search_tries_each_configuration_and_records_the_float_nodes(bundle_copy, caplog):
    caplog.set_level("INFO", logger="sc2deploy")
    row, = build_targets(bundle_copy, ["onnx-fp16"], BuildOptions(latency_runs=2, search=True))
    assert row["passed"] and row["agreement_pct"] >= 99.9
    entry = Bundle.open(bundle_copy).manifest["artifacts"]["onnx-fp16"]
    tried = entry["options"]["search"]
    assert [t["options"]["keep_float"] for t in tried] == [
        [], ["/encoder/encoder.4/Conv"], GDN_NODES, GDN_NODES + ["/encoder/encoder.4/Conv"]]
    kept = {k: v for k, v in entry["options"].items() if k != "search"}
    assert kept in [t["options"] for t in tried if t["passed"]]
    assert kept["keep_io_types"] is True
    assert "tried fp32: <last Conv>, <GDN> (13 nodes)" in caplog.text
    bundle = Bundle.open(bundle_copy)
    with load_runner(bundle, "onnx-fp16") as runner:
        assert runner.infer(bundle.preprocessing()(split_images(None)[1][0])).dtype == np.int32


def test_a_search_that_never_passes_fails_without_suggesting_search(bundle_copy):
    row, = build_targets(bundle_copy, ["onnx-fp16"],
                         BuildOptions(latency_runs=1, search=True,
                                      gate=GateOptions("symbols", min_agreement=100.0)))
    assert not row["passed"] and "--search" not in row["error"]
    assert re.search(r"onnx-fp16: none of the 4 configurations tried passed the gate; the most "
                     r"faithful \(.*\): 99\.\d+ % of symbols equal the torch fp32 reference on "
                     r"[\w-]+/.*/onnxruntime-[\d.]+, below the 100\.0 % required; the new "
                     r"artifact was discarded", row["error"]), row["error"]
    assert "onnx-fp16" not in Bundle.open(bundle_copy).manifest["artifacts"]
    row, = build_targets(bundle_copy, ["onnx-fp16"], BuildOptions(
        latency_runs=1, gate=GateOptions("symbols", min_agreement=100.0)))
    assert "try --search to try other fp16 configurations" in row["error"]


def test_keep_float_applies_to_fp16(bundle_copy):
    row, = build_targets(bundle_copy, ["onnx-fp16"], BuildOptions(
        latency_runs=1, int8=Int8Options(keep_float=(LAST_CONV, "Abs"))))
    assert row["passed"]
    entry = Bundle.open(bundle_copy).manifest["artifacts"]["onnx-fp16"]
    assert entry["options"]["keep_float"] == ["/encoder/encoder.1/Abs", "/encoder/encoder.3/Abs",
                                              "/encoder/encoder.4/Conv"]
    row, = build_targets(bundle_copy, ["onnx-fp16"],
                         BuildOptions(int8=Int8Options(keep_float=("NoSuchOp",))))
    assert not row["passed"] and "--keep-float ['NoSuchOp']: no such node" in row["error"]
