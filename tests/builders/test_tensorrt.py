"""TensorRT: the host half is real (Q/DQ graph checked in onnxruntime); the device half skips."""

import importlib.util
import re
import shutil

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from sc2deploy.bundle import Bundle
from sc2deploy.errors import UsageError
from sc2deploy.targets import get_target
from sc2deploy.targets.gate import GateOptions
from sc2deploy.builders.build import (BuildOptions, build_targets, format_table, next_steps,
                                      verify_bundle)
from sc2deploy.builders.tensorrt_build import build_engine, tensorrt_problems
from sc2deploy.preprocess import sample_images
from sc2deploy.report.bundle_info import describe

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None
RAN = "onnxruntime fp32 (host check; TensorRT not run)"  # what runs tensorrt-fp16 here


@pytest.fixture(scope="module")
def trt_build(demo_bundle, tmp_path_factory):
    """(bundle, build rows) of tensorrt-fp16 and tensorrt-int8 on a copy of the demo bundle."""
    dst = tmp_path_factory.mktemp("trt") / "bundle"
    shutil.copytree(demo_bundle.path, dst)
    # The graph is under test, not the gate: judged on symbols (the demo's tail would judge the
    # task, on which this plain int8 recipe flips 1 of 16 predictions).
    rows = build_targets(dst, ["tensorrt-fp16", "tensorrt-int8"],
                         BuildOptions(latency_runs=1, gate=GateOptions("symbols")))
    return Bundle.open(dst), rows


@pytest.fixture(scope="module")
def trt_bundle(trt_build):
    return trt_build[0]


def _says_what_ran(table: str, verdict: str = "passed") -> bool:
    return re.search(rf"tensorrt-fp16 +fp16 +{re.escape(RAN)} .* {verdict}", table) is not None


def test_build_info_and_verify_say_what_ran(trt_build, tmp_path):
    bundle, rows = trt_build
    assert _says_what_ran(format_table(rows))
    assert "onnxruntime int8 Q/DQ (host check; TensorRT not run)" in format_table(rows)
    assert re.search(rf"tensorrt-fp16 .* symbols equal to torch; run by {re.escape(RAN)}",
                     describe(bundle))
    copy = tmp_path / "bundle"
    shutil.copytree(bundle.path, copy)
    # 2 images cannot decide the task gate (a bundle with a tail): the verdict says so
    assert _says_what_ran(format_table(verify_bundle(copy, sample_images()[:2])), "undecided")


def test_next_steps_send_tensorrt_to_the_jetson(trt_build):
    bundle, rows = trt_build
    steps = next_steps(bundle.path, rows)
    assert not any("--target tensorrt-fp16 " in s or s.startswith("next:") for s in steps)
    assert (f"tensorrt-fp16 ran {RAN}; build and profile TensorRT on the Jetson: sc2deploy "
            f"build-engine {bundle.path} --precision fp16, then sc2deploy profile {bundle.path} "
            "--target tensorrt-fp16-engine") in steps


def test_a_profile_records_what_ran_and_stays_off_the_front(trt_bundle):
    from sc2deploy.measure.options import ProfileOptions
    from sc2deploy.measure.runtime import profile
    from sc2deploy.report.pareto import candidates, left_out
    from sc2deploy.report.summary import format_profile
    from sc2deploy.results.schema import validate

    doc = validate(profile(ProfileOptions(bundle=trt_bundle.path, target="tensorrt-fp16",
                                          runs=2, warmup=0, energy="none", baselines=False,
                                          progress=False)))
    assert doc["executed"] == {"runtime": "onnxruntime", "precision": "fp32",
                               "host_check": True, "text": RAN}
    assert f"ran        {RAN}; not the target's runtime" in format_profile(doc)
    assert candidates([doc]) == [] and RAN in left_out([doc])


def test_int8_qdq_graph_is_tensorrt_ready(trt_bundle):
    entry = trt_bundle.manifest["artifacts"]["tensorrt-int8"]
    assert entry["fidelity"]["agreement_pct"] >= 99.0
    assert "--int8" in entry["options"]["recipe"]["trtexec"]
    path = trt_bundle.file(entry["file"])
    assert tensorrt_problems(path) == []
    model = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    qdq = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert len(qdq) >= 10
    for node in qdq:
        zero = inits[node.input[2]]
        assert zero.dtype == np.int8 and not zero.any()


def test_checker_names_what_tensorrt_refuses(trt_bundle, tmp_path):
    model = onnx.load(str(trt_bundle.file(trt_bundle.manifest["artifacts"]["tensorrt-int8"]["file"])))
    for init in model.graph.initializer:
        if init.data_type == onnx.TensorProto.INT8 and init.dims == []:
            init.CopyFrom(numpy_helper.from_array(np.array(3, np.int8), init.name))
            break
    path = tmp_path / "bad.onnx"
    onnx.save(model, str(path))
    assert any("zero point must be int8 0" in p for p in tensorrt_problems(path))


def test_fp16_recipe(trt_bundle):
    entry = trt_bundle.manifest["artifacts"]["tensorrt-fp16"]
    assert entry["options"]["recipe"]["flags"] == ["--fp16"]
    assert "measured on the device" in entry["options"]["host_check"]


def test_engine_targets_are_built_on_the_device(trt_bundle):
    target = get_target("tensorrt-int8-engine")
    assert target.build_on == "device" and target.runtime == "tensorrt"
    assert target.builder is None  # built by build-engine, on the Jetson
    with pytest.raises(UsageError, match="tensorrt-int8-engine is built on the device: run "
                                         "there `sc2deploy build-engine"):
        build_targets(trt_bundle.path, ["tensorrt-int8-engine"], BuildOptions())


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed: the device test below runs")
def test_build_engine_without_tensorrt_says_where_to_run(trt_bundle):
    with pytest.raises(UsageError, match="TensorRT is not installed: run build-engine on the "
                                         "Jetson"):
        build_engine(trt_bundle.path, "int8")


@pytest.mark.skipif(not HAS_TENSORRT, reason="no TensorRT here (needs a Jetson with JetPack)")
@pytest.mark.parametrize("precision,target", [("fp16", "tensorrt-fp16-engine"),
                                              ("int8", "tensorrt-int8-engine")])
def test_build_engine_on_device(trt_bundle, precision, target):
    from sc2deploy.targets import load_runner

    engine = build_engine(trt_bundle.path, precision)
    bundle = Bundle.open(trt_bundle.path)
    assert engine.is_file() and target in bundle.manifest["artifacts"]
    with load_runner(bundle, target) as runner:
        shape = (1, *bundle.model["latent"]["shape"])
        assert runner.infer(np.zeros((1, 3, 224, 224), np.float32)).shape == shape
