"""`sc2deploy tune`: session settings timed on this CPU, recorded per CPU, used by profile."""

import json
import shutil

import pytest

from sc2deploy.bundle import Bundle
from sc2deploy.errors import UsageError
from sc2deploy.measure.options import ProfileOptions
from sc2deploy.measure.runtime import profile
from sc2deploy.measure.tuning import (MIN_GAIN, TUNED, TuneOptions, _choose, candidates,
                                      format_tuning, record, thread_counts, tune, tuned_settings)
from sc2deploy.targets.session import SessionSettings


@pytest.mark.parametrize("cores, counts", [(1, [1]), (2, [1, 2]), (6, [1, 2, 4, 6]),
                                           (8, [1, 2, 4, 8])])
def test_thread_counts_double_up_to_the_cores(cores, counts):
    assert thread_counts(cores) == counts


def test_candidates_start_with_the_defaults_and_time_xnnpack_only_where_it_is():
    plain = candidates("onnxruntime", 2, ("CPUExecutionProvider",))
    assert plain[0] == SessionSettings()
    assert len(plain) == 1 + 2 * 3 and not any(s.xnnpack for s in plain)
    with_xnn = candidates("onnxruntime", 2, ("XnnpackExecutionProvider", "CPUExecutionProvider"))
    assert [s for s in with_xnn if s.xnnpack] == [SessionSettings(1, xnnpack=True),
                                                    SessionSettings(2, xnnpack=True)]
    assert candidates("litert", 4) == [SessionSettings(), SessionSettings(1), SessionSettings(2),
                                       SessionSettings(4)]


def _rows(*p50s):
    return [{"settings": SessionSettings(k or None).to_dict(), "describe": f"c{k}",
             "p50_ms": ms} for k, ms in enumerate(p50s)]


def test_the_defaults_stay_unless_the_fastest_gains_enough():
    kept = _choose(_rows(10.0, 10.0 * (1 - MIN_GAIN / 2), 12.0))
    assert kept["chosen"] == SessionSettings().to_dict() and kept["why"].startswith(
        "no speed gain")
    won = _choose(_rows(10.0, 12.0, 7.0))
    assert won["chosen"] == SessionSettings(2).to_dict() and won["chosen_p50_ms"] == 7.0
    assert "1.43x" in won["why"]


def test_bad_settings_are_refused_with_what_was_expected():
    with pytest.raises(UsageError, match="positive integer"):
        SessionSettings(0)
    with pytest.raises(UsageError, match="basic, extended, all"):
        SessionSettings(optimization="fast")
    with pytest.raises(UsageError, match="expected a mapping"):
        SessionSettings.from_dict({"threads": 1, "spin": True})


def test_xnnpack_where_the_wheel_lacks_it_is_refused_naming_its_providers():
    ort = pytest.importorskip("onnxruntime")
    from sc2deploy.targets.session import XNNPACK_PROVIDER, onnxruntime_session_options

    if XNNPACK_PROVIDER in ort.get_available_providers():
        pytest.skip("this onnxruntime has the XNNPACK provider")
    with pytest.raises(UsageError, match="CPUExecutionProvider"):
        onnxruntime_session_options(SessionSettings(1, xnnpack=True))
    options, providers = onnxruntime_session_options(SessionSettings(1, "basic"))
    assert providers == ["CPUExecutionProvider"] and options.intra_op_num_threads == 1
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC


def test_tune_records_the_choice_for_this_cpu_and_profile_runs_with_it(demo_bundle, tmp_path):
    path = tmp_path / "b"
    shutil.copytree(demo_bundle.path, path)
    options = TuneOptions(bundle=path, rounds=3, progress=False)
    result = tune(options)
    import onnxruntime as ort

    assert [row["settings"] for row in result["candidates"]] == [
        s.to_dict() for s in candidates("onnxruntime", result["cores"],
                                        tuple(ort.get_available_providers()))]
    assert all(row["p50_ms"] > 0 for row in result["candidates"])
    assert result["chosen"] in [row["settings"] for row in result["candidates"]]
    assert "kept:" in format_tuning(result, "onnx")
    before = (path / "manifest.json").read_bytes()
    assert tuned_settings(Bundle.open(path), "onnx", "onnxruntime", "onnxruntime") is None
    record(options, result)
    assert (path / "manifest.json").read_bytes() != before
    bundle = Bundle.open(path)  # still verifies
    assert bundle.manifest["artifacts"]["onnx"][TUNED][result["key"]]["why"] == result["why"]
    settings, entry = tuned_settings(bundle, "onnx", "onnxruntime", "onnxruntime")
    assert settings.to_dict() == result["chosen"] and entry["key"] == result["key"]

    doc = profile(ProfileOptions(bundle=path, images=None, runs=3, warmup=1, progress=False))
    assert doc["session"]["source"].startswith("sc2deploy tune on this CPU")
    assert {k: doc["session"][k] for k in result["chosen"]} == result["chosen"]
    given = profile(ProfileOptions(bundle=path, runs=2, warmup=1, threads=1, progress=False))
    assert given["session"] == {**SessionSettings(1).to_dict(), "source": "--threads"}
    json.dumps(doc)  # the results document stays JSON


def test_profile_without_tuning_says_it_ran_the_runtime_defaults(demo_bundle):
    doc = profile(ProfileOptions(bundle=demo_bundle.path, runs=2, warmup=1, progress=False))
    assert doc["session"]["threads"] is None and "has not run on this CPU" in \
        doc["session"]["source"]


def test_tune_of_a_target_the_bundle_lacks_fails_clearly(demo_bundle):
    with pytest.raises(UsageError, match="sc2deploy build"):
        tune(TuneOptions(bundle=demo_bundle.path, target="tflite", rounds=3, progress=False,
                         images=None))
