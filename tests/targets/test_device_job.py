"""The device job of `verify --host` and `--emulate`, run as the device runs it:
``python -m sc2deploy.targets.device_job JOB.json INPUTS.npy OUT`` in a fresh process."""

import platform
import subprocess
import sys

from sc2deploy.machine import core_name
from sc2deploy.preprocess import sample_images
from sc2deploy.targets.device_job import MODULE, read_output, stage_job


def test_the_job_checks_sha256_and_times_only_when_asked(demo_bundle, tmp_path):
    entry = demo_bundle.manifest["artifacts"]["onnx"]
    pre = demo_bundle.preprocessing()
    inputs = [pre(p) for p in sample_images()[:2]]

    def run(folder, sha256, timing_runs):
        stage_job(folder, demo_bundle.model["input"],
                  {"k": ("onnx", str(demo_bundle.file(entry["file"])), sha256)}, inputs,
                  timing_runs, "this machine")
        (folder / "out").mkdir()
        return subprocess.run([sys.executable, "-m", MODULE, folder / "job.json",
                               folder / "inputs.npy", folder / "out"],
                              capture_output=True, text=True, timeout=300, cwd=folder)

    proc = run(tmp_path / "damaged", "0" * 64, 0)
    assert proc.returncode == 1 and "does not match the manifest's sha256" in proc.stderr
    for timing_runs in (0, 3):
        proc = run(tmp_path / str(timing_runs), entry["sha256"], timing_runs)
        assert proc.returncode == 0, proc.stderr
        result, symbols = read_output(tmp_path / str(timing_runs) / "out")
        info = result["runs"]["k"]
        assert result["machine"] == platform.machine() and result["cpu"] == core_name()
        assert info["runtime"].startswith("onnxruntime") and len(symbols["k"]) == 2
        assert (info["latency_p50_ms"] is None) == (timing_runs == 0)
        assert timing_runs == 0 or info["latency_p50_ms"] > 0


def test_a_target_that_cannot_run_here_is_skipped_with_the_reason(demo_bundle, tmp_path):
    entry = demo_bundle.manifest["artifacts"]["onnx"]
    stage_job(tmp_path, demo_bundle.model["input"],
              {"k": ("onnx", str(demo_bundle.file(entry["file"])), None)},
              [demo_bundle.preprocessing()(sample_images()[0])], 0, "the test device")
    (tmp_path / "out").mkdir()
    without_onnxruntime = ("import sys\nsys.modules['onnxruntime'] = None  # not installed\n"
                           f"from {MODULE} import main\nsys.exit(main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", without_onnxruntime, tmp_path / "job.json",
                           tmp_path / "inputs.npy", tmp_path / "out"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result, symbols = read_output(tmp_path / "out")
    assert result["runs"] == {"k": {"skipped": "cannot run on the test device: onnx needs "
                                               "onnxruntime (not installed)"}}
    assert symbols == {}


def test_the_job_says_how_to_call_it():
    proc = subprocess.run([sys.executable, "-m", MODULE, "job.json"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1
    assert f"usage: python -m {MODULE} JOB.json INPUTS.npy OUT" in proc.stderr
