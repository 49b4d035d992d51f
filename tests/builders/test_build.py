"""build / verify: artifacts are gated on symbol agreement with the torch fp32 head."""

import json
import re
import shutil

import numpy as np
import pytest

from sc2deploy.bundle import Bundle
from sc2deploy.errors import BuildError, UsageError
from sc2deploy.targets import get_target, load_runner, targets
from sc2deploy.targets.gate import GateOptions
from sc2deploy.builders.build import (BuildOptions, build_targets, format_table, split_images,
                                     verify_bundle)


@pytest.fixture()
def bundle_copy(demo_bundle, tmp_path):
    dst = tmp_path / "bundle"
    shutil.copytree(demo_bundle.path, dst)
    return dst


def test_registry_lists_capabilities():
    known = targets()
    assert {"onnx", "onnx-fp16", "onnx-int8"} <= set(known)
    assert known["onnx-int8"].needs_calibration and known["onnx"].precision == "fp32"
    with pytest.raises(UsageError, match="unknown target 'tpu'; known targets: onnx, onnx-fp16"):
        get_target("tpu")


def test_calibration_and_evaluation_images_never_overlap():
    calib, evals = split_images(None)
    assert calib and evals and not set(calib) & set(evals)


def test_fp32_and_fp16_builds_record_fidelity(bundle_copy):
    rows = build_targets(bundle_copy, ["onnx", "onnx-fp16"], BuildOptions(latency_runs=2))
    by_name = {r["target"]: r for r in rows}
    onnx = by_name["onnx"]  # on the task gate's 200 images: exact bar a rare .5 tie
    assert onnx["passed"] and onnx["mismatches"] == onnx["ties"] <= 2
    assert by_name["onnx-fp16"]["agreement_pct"] >= 99.9
    bundle = Bundle.open(bundle_copy)
    entry = bundle.manifest["artifacts"]["onnx-fp16"]
    assert entry["precision"] == "fp16" and entry["gate"]["passed"] is True
    assert entry["fidelity"]["images"] == 200 and len(entry["sha256"]) == 64  # the task gate's
    assert abs(entry["fidelity"]["rate_change_pct"]) < 1
    with load_runner(bundle, "onnx-fp16") as runner:
        x = bundle.preprocessing()(split_images(None)[1][0])
        assert runner.infer(x).dtype == np.int32
    rows = verify_bundle(bundle_copy)
    assert [r["target"] for r in rows] == ["onnx", "onnx-fp16"]
    assert json.dumps(rows)


STRICT = GateOptions("symbols", min_agreement=100.0)  # every symbol equal: fp16 fails


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_gate_removes_a_failing_artifact(bundle_copy):
    strict = BuildOptions(latency_runs=1, gate=STRICT)
    before = _snapshot(bundle_copy)
    row, = build_targets(bundle_copy, ["onnx-fp16"], strict)
    assert row["passed"] is False
    assert re.search(r"onnx-fp16: 99\.\d+ % of symbols .* below the 100\.0 % required; the new "
                     r"artifact was discarded; the bundle is unchanged \(try --search to try "
                     r"other fp16 configurations, or --allow-low-fidelity to keep it anyway\)",
                     row["error"]), row["error"]
    assert _snapshot(bundle_copy) == before
    assert "onnx-fp16" not in Bundle.open(bundle_copy).manifest["artifacts"]
    rows = build_targets(bundle_copy, ["onnx-fp16"],
                         BuildOptions(latency_runs=1, gate=STRICT,
                                      allow_low_fidelity=True))
    assert rows[0]["passed"] is False
    assert Bundle.open(bundle_copy).manifest["artifacts"]["onnx-fp16"]["gate"]["passed"] is False


def test_runner_validates_its_input(demo_bundle):
    with load_runner(demo_bundle, "onnx") as runner:
        with pytest.raises(UsageError, match=r"Received incompatible shape: \(1, 3, 200, 200\)\. "
                                             r"Note: expected a shape compatible with: "
                                             r"\(1, 3, 224, 224\)"):
            runner.infer(np.zeros((1, 3, 200, 200), np.float32))
        with pytest.raises(UsageError, match="Received dtype float64"):
            runner.infer(np.zeros((1, 3, 224, 224)))
    with pytest.raises(UsageError, match="not active"):
        load_runner(demo_bundle, "onnx").infer(np.zeros((1, 3, 224, 224), np.float32))
    with pytest.raises(UsageError, match="has no 'onnx-int8' artifact; build it first"):
        load_runner(demo_bundle, "onnx-int8")


def test_int8_options_and_search(bundle_copy, caplog):
    from sc2deploy.builders.build import Int8Options

    low = BuildOptions(latency_runs=1, allow_low_fidelity=True, int8=Int8Options())
    row = build_targets(bundle_copy, ["onnx-int8"], low)[0]
    assert 50 < row["agreement_pct"] < 100 and row["within_one_pct"] > 99
    entry = Bundle.open(bundle_copy).manifest["artifacts"]["onnx-int8"]
    assert entry["options"]["activations"] == "int8" and entry["precision"] == "int8"
    row, = build_targets(bundle_copy, ["onnx-int8"],
                         BuildOptions(int8=Int8Options(keep_float=("NoSuchOp",))))
    assert not row["passed"] and "--keep-float ['NoSuchOp']: no such node" in row["error"]
    found = build_targets(bundle_copy, ["onnx-int8"], BuildOptions(latency_runs=2, search=True))[0]
    assert found["passed"] and found["agreement_pct"] >= 99.0
    entry = Bundle.open(bundle_copy).manifest["artifacts"]["onnx-int8"]
    assert len(entry["options"]["search"]) == len(get_target("onnx-int8").search) == 13
    passing = [t for t in entry["options"]["search"] if t["passed"]]
    assert passing and (len(passing) == 1 or all(t.get("timed_in_turns") for t in passing))
    fastest = min(passing, key=lambda t: t["latency_p50_ms"])
    assert {k: v for k, v in entry["options"].items() if k != "search"} == fastest["options"]
    speed = entry["speed"]  # against the fp32 head, timed in turns on this CPU
    assert speed["gain"] == (speed["fp32_p50_ms"] / speed["p50_ms"] >= 1.05)
    assert ("no speed gain" in speed["summary"]) != speed["gain"]
    assert "onnx-int8 search: 13 configurations" in format_table([found])


def test_failed_rebuild_leaves_a_passing_artifact_usable(bundle_copy):
    """The bug that bricked bundles: a refused rebuild deleted the earlier, passing file."""
    build_targets(bundle_copy, ["onnx-int8"], BuildOptions(latency_runs=1, search=True))
    entry = Bundle.open(bundle_copy).manifest["artifacts"]["onnx-int8"]
    assert entry["quantization"] in ("A8W8", "A16W8", "W8 only")
    before = _snapshot(bundle_copy)
    failing = BuildOptions(latency_runs=1, gate=STRICT)
    row, = build_targets(bundle_copy, ["onnx-int8"], failing)
    assert not row["passed"] and "try --search" in row["error"]
    row, = build_targets(bundle_copy, ["onnx-int8"], BuildOptions(
        latency_runs=1, search=True, gate=STRICT))
    assert not row["passed"] and "--search" not in row["error"]  # it was given already
    assert _snapshot(bundle_copy) == before
    with load_runner(Bundle.open(bundle_copy), "onnx-int8") as runner:
        assert runner.infer(Bundle.open(bundle_copy).preprocessing()(
            split_images(None)[1][0])).dtype == np.int32


def test_each_target_is_gated_on_its_own(bundle_copy):
    rows = build_targets(bundle_copy, ["onnx-fp16", "onnx"],
                         BuildOptions(latency_runs=1, gate=STRICT))
    by_name = {r["target"]: r for r in rows}
    assert not by_name["onnx-fp16"]["passed"] and by_name["onnx"]["passed"]
    onnx = Bundle.open(bundle_copy).manifest["artifacts"]
    assert "onnx-fp16" not in onnx and onnx["onnx"]["gate"]["min_agreement_pct"] == 100.0
    table = format_table(rows)
    assert re.search(r"onnx-fp16 +fp16 .* FAILED", table) and re.search(r"onnx +fp32 .* passed",
                                                                         table)


def test_fp32_refusal_says_the_export_file_stays(bundle_copy, monkeypatch):
    import sc2deploy.targets.gate as gate

    monkeypatch.setattr(gate, "decide", lambda *a: {"rule": "symbols: exact bar .5 ties",
                                                     "passed": False, "min_agreement_pct": 100.0})
    row, = build_targets(bundle_copy, ["onnx"], BuildOptions(latency_runs=1))
    assert "head.onnx is the export's own and stays; onnx was not recorded" in row["error"]
    assert "removed" not in row["error"] and (bundle_copy / "head.onnx").is_file()


@pytest.mark.parametrize("value", [-1, 100.5, 101])
def test_min_agreement_is_a_percentage(value):
    with pytest.raises(UsageError, match=f"--min-agreement {value:g}: expected a percentage "
                                         "from 0 to 100"):
        GateOptions(min_agreement=value)


def test_a16w8_is_labeled_as_such(bundle_copy):
    from sc2deploy.builders.build import Int8Options

    row, = build_targets(bundle_copy, ["onnx-int8"], BuildOptions(
        latency_runs=1, allow_low_fidelity=True, int8=Int8Options(activations="int16")))
    assert row["quantization"] == "A16W8"
    entry = Bundle.open(bundle_copy).manifest["artifacts"]["onnx-int8"]
    assert entry["quantization"] == "A16W8" and entry["options"]["activations"] == "int16"
    assert "int8 A16W8" in format_table(verify_bundle(bundle_copy))


def test_undeclared_activations_are_refused_before_building(bundle_copy):
    from sc2deploy.builders.build import Int8Options

    before = _snapshot(bundle_copy)
    with pytest.raises(UsageError, match=r"onnx-int8 accepts activations int8 or int16 or "
                                         r"float, not dynamic \(received --activations "
                                         r"dynamic\); build onnx-int8 with --activations int8 "
                                         r"or int16 or float"):
        build_targets(bundle_copy, ["onnx", "onnx-int8"],
                      BuildOptions(int8=Int8Options(activations="dynamic")))
    assert _snapshot(bundle_copy) == before


def test_a_graph_that_cannot_be_ordered_is_a_build_error():
    from onnx import TensorProto, helper

    from sc2deploy.builders.onnx_build import sort_topologically

    graph = helper.make_graph(
        [helper.make_node("Relu", ["b"], ["a"], name="first"),
         helper.make_node("Relu", ["a"], ["b"], name="second")], "cycle",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, [1])])
    with pytest.raises(BuildError, match=r"received a graph with a cycle or an undefined input "
                                         r"\(2 nodes cannot be ordered; first waits for \['b'\]\)"
                                         r".* try another onnxruntime version"):
        sort_topologically(graph)


def test_verify_records_this_cpu_so_profile_stops_warning(bundle_copy):
    from sc2deploy.bundle import write_manifest
    from sc2deploy.machine import here_key, unverified_warning

    manifest = Bundle.open(bundle_copy).manifest  # as exported before fidelity_by_cpu
    del manifest["artifacts"]["onnx"]["fidelity_by_cpu"]
    write_manifest(bundle_copy, manifest)
    art = Bundle.open(bundle_copy).manifest["artifacts"]["onnx"]
    assert unverified_warning(art, "onnx", "onnxruntime", "onnxruntime")

    key = here_key("onnxruntime", "onnxruntime")
    (row,) = verify_bundle(bundle_copy, split_images(None)[1][:2])
    assert row["measured_on"] == key and row["passed"]
    art = Bundle.open(bundle_copy).manifest["artifacts"]["onnx"]
    entry = art["fidelity_by_cpu"][key]
    assert entry["images"] == 2 and entry["verdict"]["passed"] and not entry["emulated"]
    assert entry["stats"]["agreement_pct"] == row["agreement_pct"]
    assert unverified_warning(art, "onnx", "onnxruntime", "onnxruntime") is None
