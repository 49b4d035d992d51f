"""sweep: checkpoints x targets from one file, built in parallel, failures reported."""

import json

import pytest

from sc2deploy.cli import main
from sc2deploy.errors import UsageError
from sc2deploy.orchestrate.sweep import load_sweep


def write(tmp_path, text):
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    return path


def test_sweep_builds_in_parallel_and_reports_failed_items(tmp_path, capsys):
    sweep = write(tmp_path, """
checkpoints:
  - {name: small, model: demo, input_size: 64}
  - {name: missing, model: ladon, checkpoint: nowhere.pt}
targets: [onnx, no-such-target]
profile: {runs: 3, warmup: 1, energy: none, idle_s: 0, baselines: false,
          link: lora-ideal-37.5k, server_ms: 12.5}
workers: 2
""")
    assert main(["sweep", str(sweep), "-o", str(tmp_path / "out")]) == 1
    printed = capsys.readouterr().out
    assert "sweep: 1 of 4 items ok" in printed
    summary = json.loads((tmp_path / "out" / "sweep.json").read_text())
    status = {(i["checkpoint"], i["target"]): i for i in summary["items"]}
    assert status[("small", "onnx")]["status"] == "ok"
    assert "unknown target 'no-such-target'" in status[("small", "no-such-target")]["error"]
    assert "checkpoint not found" in status[("missing", "onnx")]["error"]
    result = json.loads((tmp_path / "out" / "results" / "small_onnx.json").read_text())
    assert result["label"] == "small/onnx" and result["bundle"]["input_shape"] == [1, 3, 64, 64]
    assert result["end_to_end_ms"]["server"] == 12.5
    report = (tmp_path / "out" / "report" / "report.md").read_text()
    assert "on the Pareto front" in report and "small/onnx" in report


@pytest.mark.parametrize("text,message", [
    ("targets: [onnx]\n", "'checkpoints' must be a non-empty list"),
    ("checkpoints: [{name: a, model: demo}]\n", "'targets' must be a non-empty list"),
    ("checkpoints: [{name: a, model: demo}, {name: a, model: demo}]\ntargets: [onnx]\n",
     "names must be unique"),
    ("checkpoints: [{name: 'a b', model: demo}]\ntargets: [onnx]\n", "'name' must be"),
    ("checkpoints: [{name: a}]\ntargets: [onnx]\n", "'model' is required"),
    ("checkpoints: [{name: a, model: demo}]\ntargets: [onnx]\nprofile: {speed: 1}\n",
     "unknown keys \\['speed'\\]"),
    ("checkpoints: [{name: a, model: demo}]\ntargets: [onnx]\nworkers: 0\n", "'workers'"),
    ("checkpoints: [\n", "not valid YAML"),
])
def test_bad_sweep_files_are_refused(tmp_path, text, message):
    with pytest.raises(UsageError, match=message):
        load_sweep(write(tmp_path, text))


def test_paths_are_relative_to_the_sweep_file(tmp_path):
    sweep = load_sweep(write(tmp_path, "checkpoints: [{name: a, model: ladon, checkpoint: "
                                       "c/x.pt}]\ntargets: [onnx]\nimages: imgs\n"))
    assert sweep.checkpoints[0].path == (tmp_path / "c" / "x.pt").resolve()
    assert sweep.images == (tmp_path / "imgs").resolve() and sweep.hosts == ("local",)


def test_an_interrupted_profile_keeps_the_earlier_result_and_stops_the_sweep(demo_bundle,
                                                                            tmp_path):
    import os
    import signal
    import threading

    from sc2deploy.errors import Interrupted
    from sc2deploy.orchestrate.sweep import LOCAL, Sweep, _profile_one

    out = tmp_path / "demo_onnx.json"
    earlier = b'{"an earlier complete run": true}\n'
    out.write_bytes(earlier)
    sweep = Sweep(checkpoints=(), targets=("onnx",),
                  profile={"runs": 100000, "warmup": 1, "energy": "none", "idle_s": 0})
    timer = threading.Timer(5.0, os.kill, (os.getpid(), signal.SIGINT))  # Ctrl-C mid-run
    timer.start()
    try:
        with pytest.raises(Interrupted, match="PARTIAL results are in .*demo_onnx.partial.json"):
            _profile_one(sweep, demo_bundle.path, "onnx", LOCAL, "demo/onnx", out)
    finally:
        timer.cancel()
    assert out.read_bytes() == earlier
    partial = json.loads((tmp_path / "demo_onnx.partial.json").read_text())
    assert partial["complete"] is False and partial["runs"]["measured"] > 0
