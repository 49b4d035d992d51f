"""`verify --emulate CPU`: fidelity measured on an emulated aarch64 CPU, recorded per CPU.

The emulated test needs qemu-aarch64-static and aarch64-linux-gnu-gcc (.ci/run installs them);
it reuses build/arm (make arm-check's work folder), whose setup is cached by stamps.
"""

import platform

import numpy as np
import pytest

from sc2deploy import cli
from sc2deploy.builders.build import format_table
from sc2deploy.orchestrate.emulation import verify as ve

CPU = "cortex-a76"

# The independent measurement: the same runners, called directly under emulation.
RUN_SNIPPET = r'''
import sys
from pathlib import Path
import numpy as np
from sc2deploy.bundle import Bundle
from sc2deploy.targets import load_runner
bundle_dir, inputs, out, *names = sys.argv[1:]
bundle = Bundle.open(Path(bundle_dir))
for name in names:
    with load_runner(bundle, name, threads=1) as runner:
        s = np.stack([runner.infer(x) for x in np.load(inputs)]).astype(np.int32)
    np.save(Path(out) / f"{name}.npy", s)
'''


def test_keys_subsets_and_table():
    assert ve.fidelity_key("aarch64", "cortex-a76", "onnxruntime", "1.31.1") == \
        "aarch64/cortex-a76/onnxruntime-1.31.1"
    assert ve.fidelity_key("x86_64", "AMD EPYC 7B13 64-Core Processor", "onnxruntime", "1.2") == \
        "x86_64/amd-epyc-7b13-64-core-processor/onnxruntime-1.2"
    assert ve.emulation_indices(16, 4) == [0, 4, 8, 12] and ve.emulation_indices(2, 4) == [0, 1]
    ref = ve.subset(type("R", (), {"inputs": [0, 1, 2], "symbols": [3, 4, 5], "pre_round": None,
                                   "server": {"tail": [6, 7, 8]}})(), [0, 2])
    assert (ref.inputs, ref.symbols, ref.pre_round, ref.server) == ([0, 2], [3, 5], None,
                                                                     {"tail": [6, 8]})
    row = {"target": "onnx", "precision": "fp32", "agreement_pct": 100.0, "within_one_pct": 100.0,
           "mean_abs_diff": 0.0, "rate_change_pct": 0.0, "latency_p50_ms": None,
           "passed": True, "rule": "symbols: exact", "cpu": "cortex-a76 (qemu)",
           "timing": ve.NO_TIMING}
    table = format_table([row, {"target": "tensorrt-fp16", "cpu": "cortex-a76 (qemu)",
                                "skipped": "not emulated"}])
    assert "measured on" in table and "cortex-a76 (qemu)" in table
    assert "n/a" in table and ve.NO_TIMING in table


def test_subset_keeps_the_side_outputs_a_bq_tail_takes(tmp_path):
    import torch

    from tests.helpers.reference_models import bq_student
    from sc2deploy.builders.build import Reference, fidelity_stats
    from sc2deploy.export import ExportOptions, export_bundle
    from sc2deploy.preprocess import sample_images

    torch.save({"model": bq_student(channels=6).state_dict()}, tmp_path / "bq.pt")
    bundle = export_bundle(ExportOptions(model="bq6", checkpoint=tmp_path / "bq.pt",
                                         out=tmp_path / "b", input_size=64,
                                         images=sample_images()[:3]))
    small = ve.subset(Reference(bundle, sample_images()[:3]), [0, 2])
    assert [sorted(s) for s in small.side] == [["scale", "zero_point"]] * 2
    stats = fidelity_stats(bundle, small, small.symbols)  # the tail needs scale, zero_point
    assert stats["agreement_pct"] == 100.0
    assert (stats["task"]["images"], stats["task"]["top1_agree"]) == (2, 2)


def test_emulate_needs_a_cpu_and_images(tmp_path):
    with pytest.raises(ve.UsageError, match="--emulate-images 0: expected at least 1"):
        ve.EmulateOptions(cpus=(CPU,), images=0)
    with pytest.raises(ve.UsageError, match="name at least one CPU"):  # no CPU: no emulation
        ve.verify_emulated(tmp_path, ve.EmulateOptions())


def test_verify_emulate_records_fidelity_per_cpu(tmp_path, capsys, emulation_tools):
    from sc2deploy.builders.build import BuildOptions, Reference, build_targets, verify_images
    from sc2deploy.bundle import Bundle
    from sc2deploy.export import ExportOptions, export_bundle
    from sc2deploy.orchestrate.emulation.emulator import Emulator
    from sc2deploy.targets.gate import agreement

    path = tmp_path / "b"
    export_bundle(ExportOptions(model="demo", out=path, input_size=64))
    names = ["onnx", "onnx-fp16"]
    assert all(r["passed"] for r in build_targets(path, names, BuildOptions()))
    capsys.readouterr()

    assert cli.main(["verify", str(path), "--emulate", CPU, "--emulate-images", "2"]) == 0
    out = capsys.readouterr().out
    assert f"{CPU} (qemu)" in out and ve.NO_TIMING in out and "s per image" in out

    bundle = Bundle.open(path)  # the transaction left a valid bundle
    evals = verify_images(bundle).images  # the demo has a tail: the task gate's images
    chosen = [evals[i] for i in ve.emulation_indices(len(evals), 2)]
    reference = Reference(bundle, chosen)
    np.save(tmp_path / "inputs.npy", np.stack(reference.inputs))
    emu = Emulator(ve.DEFAULT_WORK, [CPU])
    proc = emu.run_python(CPU, ["-c", RUN_SNIPPET, path, tmp_path / "inputs.npy", tmp_path,
                                *names], timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]

    for name in names:
        expected = agreement(reference.symbols, list(np.load(tmp_path / f"{name}.npy")),
                             reference.pre_round)
        entries = bundle.manifest["artifacts"][name]["fidelity_by_cpu"]
        emulated = {k: e for k, e in entries.items() if e["emulated"]}
        assert len(emulated) == 1, entries.keys()
        (key, entry), = emulated.items()
        assert key.startswith(f"aarch64/{CPU}/onnxruntime-"), key
        assert (entry["cpu"], entry["machine"], entry["images"]) == (CPU, ve.EMULATED_MACHINE, 2)
        assert entry["runtime"].startswith("onnxruntime ")
        stats = entry["stats"]
        assert stats["latency_p50_ms"] is None
        for k in ("agreement_pct", "mismatches", "ties", "values"):
            assert stats[k] == expected[k], (name, k, stats[k], expected[k])
        assert entry["verdict"]["rule"] and isinstance(entry["verdict"]["passed"], bool)
        host = [e for e in entries.values() if not e["emulated"]]
        assert len(host) == 1 and host[0]["machine"] == platform.machine()
        assert host[0]["stats"]["latency_p50_ms"] > 0
