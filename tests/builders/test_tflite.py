"""TFLite targets: converted with litert-torch, run with LiteRT, gated like every target."""

import shutil

import numpy as np
import pytest


from sc2deploy.bundle import Bundle
from sc2deploy.errors import UsageError
from sc2deploy.targets import get_target, load_runner
from sc2deploy.targets.gate import GateOptions
from sc2deploy.builders.build import BuildOptions, Int8Options, build_targets, format_table
from tests.helpers.symbols import assert_same_symbols

pytestmark = pytest.mark.skipif(get_target("tflite").missing("build") is not None,
                                reason="litert-torch is not installed (make test installs it)")


@pytest.fixture(scope="module")
def tflite_bundle(demo_bundle, tmp_path_factory):
    dst = tmp_path_factory.mktemp("tflite") / "bundle"
    shutil.copytree(demo_bundle.path, dst)
    return dst


def _pre_round(bundle, x):
    import torch

    from sc2deploy.export.heads import head_from_arrays

    module = head_from_arrays("fp", bundle.torch_head_arrays())
    with torch.no_grad():
        return module.pre_round(torch.from_numpy(x)).numpy()


def test_fp32_and_fp16(tflite_bundle):
    rows = {r["target"]: r for r in build_targets(tflite_bundle, ["tflite", "tflite-fp16"],
                                                   BuildOptions(latency_runs=2))}
    assert rows["tflite"]["passed"] and rows["tflite"]["mismatches"] == rows["tflite"]["ties"]
    assert rows["tflite-fp16"]["agreement_pct"] >= 99.9
    bundle = Bundle.open(tflite_bundle)
    assert bundle.manifest["artifacts"]["tflite"]["runtime"] == "litert"
    from sc2deploy.preprocess import sample_images

    x = bundle.preprocessing()(sample_images()[-1])
    with load_runner(bundle, "tflite", threads=2) as runner:
        symbols = runner.infer(x)
    assert symbols.shape == (1, *bundle.model["latent"]["shape"]) and symbols.dtype == np.int32
    assert_same_symbols([bundle.reference()["symbols"][-1:]], [symbols], [_pre_round(bundle, x)])


def test_int8_static_has_quantized_input_and_dynamic_passes(tflite_bundle):
    static = BuildOptions(latency_runs=1, allow_low_fidelity=True)
    row = build_targets(tflite_bundle, ["tflite-int8"], static)[0]
    if "error" in row:  # students whose GDN norm quantizes to zero: LiteRT refuses to run
        assert not row["passed"] and "DIV" in row["error"]
        assert "GDN's norm" in row["error"] and "--activations dynamic" in row["error"]
    else:
        assert 90 < row["agreement_pct"] < 100 and row["within_one_pct"] > 99.9
        bundle = Bundle.open(tflite_bundle)
        with load_runner(bundle, "tflite-int8") as runner:
            assert np.dtype(runner._input["dtype"]) == np.int8  # the runner quantizes input
            assert runner.infer(np.zeros((1, 3, 224, 224), np.float32)).dtype == np.int32
    dynamic = BuildOptions(latency_runs=1, gate=GateOptions("symbols"),
                           int8=Int8Options(activations="dynamic"))
    row = build_targets(tflite_bundle, ["tflite-int8"], dynamic)[0]
    assert row["passed"] and row["agreement_pct"] >= 99.0
    with pytest.raises(UsageError, match="tflite-int8 accepts activations int8 or dynamic or "
                                         "float, not int16 .*; build tflite-int8 with "
                                         "--activations"):
        build_targets(tflite_bundle, ["tflite-int8"],
                      BuildOptions(int8=Int8Options(activations="int16")))
    entry = Bundle.open(tflite_bundle).manifest["artifacts"]["tflite-int8"]
    assert entry["quantization"] == "dynamic A8W8"  # the dynamic build above is kept
    assert entry["options"]["quantizer"] == "pt2e symmetric, dynamic activations"


def test_a_search_records_what_litert_refuses_and_goes_on(demo_bundle, tmp_path):
    """The demo student's GDN norm quantizes to zero under static int8 activations: LiteRT
    refuses to run those configurations; the search records why and tries the next ones."""
    bundle = tmp_path / "b"
    shutil.copytree(demo_bundle.path, bundle)
    row, = build_targets(bundle, ["tflite-int8"], BuildOptions(
        latency_runs=1, gate=GateOptions("symbols"), search=True))
    tried = Bundle.open(bundle).manifest["artifacts"]["tflite-int8"]["options"]["search"]
    refused = [t for t in tried if "refused" in t]
    assert len(tried) == len(get_target("tflite-int8").search)
    assert refused and tried[0] == refused[0], "the plain static int8 build was not refused"
    assert tried[0]["options"]["activations"] == "int8"
    assert all(not t["passed"] and "(DIV) failed to invoke" in t["refused"]
               and "GDN's norm" in t["refused"] and "--search" not in t["refused"]
               for t in refused)
    assert len(refused) < len(tried) and any(t["passed"] for t in tried)
    assert row["passed"] and row["note"].startswith(
        f"{len(refused)} of {len(tried)} configurations refused: act int8, per-channel, minmax: "
        "tflite/kernels/div.cc")
    assert f"{len(refused)} of {len(tried)} configurations refused" in format_table([row])
