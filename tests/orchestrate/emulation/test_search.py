"""`build --search --emulate CPU`: candidates built on the host, chosen by emulated fidelity.

The emulated test needs qemu-aarch64-static and aarch64-linux-gnu-gcc (.ci/run installs them);
it reuses build/arm (make arm-check's work folder), whose setup is cached by stamps.
"""

import platform
import shutil

import pytest

from sc2deploy import cli
from sc2deploy.builders.build import BuildOptions
from sc2deploy.bundle import Bundle
from sc2deploy.errors import UsageError
from sc2deploy.export import ExportOptions, export_bundle
from sc2deploy.orchestrate.emulation import search as se
from sc2deploy.orchestrate.emulation.verify import EmulateOptions

CPU = "cortex-a76"


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory):
    return export_bundle(ExportOptions(model="demo", out=tmp_path_factory.mktemp("se") / "b",
                                       input_size=64)).path


def test_emulate_needs_search_and_an_emulatable_target(small_bundle):
    emulate = EmulateOptions(cpus=(CPU,), images=2)
    with pytest.raises(UsageError, match=r"build --emulate cortex-a76 received without --search"
                                         r".*run `sc2deploy verify .* --emulate CPU`"):
        se.build_emulated(small_bundle, ["onnx-fp16"], BuildOptions(), emulate)
    with pytest.raises(UsageError, match="tensorrt-fp16 runs on a Jetson"):
        se.build_emulated(small_bundle, ["tensorrt-fp16"], BuildOptions(search=True), emulate)


def test_build_search_emulate_picks_by_fidelity_on_every_cpu(small_bundle, tmp_path, capsys,
                                                             emulation_tools):
    path = tmp_path / "b"
    shutil.copytree(small_bundle, path)
    names = ["onnx-fp16", "onnx-int8"]
    cli.main(["build", str(path), "--search", "--emulate", CPU, "--emulate-images", "2",
              *[a for n in names for a in ("--target", n)]])
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert out.count(se.PICKED.format(cpus=f"aarch64/{CPU}")) >= 2  # log and table, each
    artifacts = Bundle.open(path).manifest["artifacts"]
    for name in names:
        assert f"{name} on {CPU} (qemu):" in out and "s per image per candidate" in out
        entry = artifacts.get(name)
        if entry is None:  # nothing passed on both CPUs: refused, naming the CPU that failed
            assert f"{name}: none of the " in out and " configurations tried passed" in out
            assert "(emulated): it fails" in out or "(emulated), below the" in out \
                or f"on {platform.machine()}/" in out and ": it fails" in out
            continue
        by_cpu = entry["fidelity_by_cpu"]
        emulated = [k for k, e in by_cpu.items() if e["emulated"]]
        host = [e for e in by_cpu.values() if not e["emulated"]]
        assert len(emulated) == 1 and emulated[0].startswith(f"aarch64/{CPU}/onnxruntime-")
        assert len(host) == 1 and host[0]["machine"] == platform.machine()
        assert by_cpu[emulated[0]]["images"] == 2
        assert by_cpu[emulated[0]]["stats"]["latency_p50_ms"] is None
        tried = entry["options"]["search"]
        # the host passes and no emulated CPU refutes (2 images: a task verdict is undecided)
        everywhere = [t["passed"] and all(e["passed"] or e["decision"] == "undecided"
                                          for e in t["fidelity_by_cpu"].values())
                      for t in tried]
        kept = {k: v for k, v in entry["options"].items() if k != "search"}
        assert kept == tried[everywhere.index(True)]["options"]  # the first passing everywhere
        assert entry["gate"]["passed"] and f"aarch64/{CPU}/" in entry["gate"]["cpu"]
    # measured (2026-12-07, the retrained demo at 64 px): onnx-fp16 passes on both; onnx-int8
    # is refused on the host's task gate (193/200 at best); each student at 64 px differs
    assert set(names) & set(artifacts), "nothing kept: the kept branch went untested"
