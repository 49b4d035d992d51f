"""`verify --host`: fidelity and speed measured on a device over a real sshd on 127.0.0.1.

The "device" is this machine (the ``device`` fixture of conftest.py), its python this
venv's; so the recorded key must be this machine's, and the symbols those plain `verify`
computes here.
"""

import platform
import shutil
import sys

import pytest

from sc2deploy import cli
from sc2deploy.builders.build import BuildOptions, build_targets, split_images, verify_bundle
from sc2deploy.bundle import Bundle
from sc2deploy.errors import RemoteError, UsageError
from sc2deploy.export import ExportOptions, export_bundle
from sc2deploy.machine import core_name, here_key
from sc2deploy.measure.options import RemoteOptions
from sc2deploy.orchestrate.ssh.verify import verify_remote
from sc2deploy.targets.gate import GateOptions

NAMES = ["onnx", "tensorrt-fp16"]  # the second is a host check: never sent to the device

# A device python whose `-m sc2deploy` works but whose device script fails or hangs.
STUB = r'''#!{python}
import os, sys, time
if sys.argv[1:3] == ["-m", "sc2deploy"]:
    os.execv({python!r}, [{python!r}, *sys.argv[1:]])
if {hang!r}:
    time.sleep(120)
sys.exit("ModuleNotFoundError: No module named 'onnxruntime'")
'''


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A 64 px demo bundle with onnx and the tensorrt-fp16 host check, and 4 images."""
    root = tmp_path_factory.mktemp("verify-remote")
    export_bundle(ExportOptions(model="demo", out=root / "b", input_size=64))
    assert all(r["passed"] for r in build_targets(root / "b", NAMES, BuildOptions()))
    images = root / "images"
    images.mkdir()
    for path in split_images(None)[1][:4]:
        shutil.copy(path, images)
    return root / "b", images


@pytest.fixture
def bundle(built, tmp_path):
    shutil.copytree(built[0], tmp_path / "b")
    return tmp_path / "b"


def remote(device, **kwargs):
    kwargs.setdefault("remote_python", sys.executable)
    return RemoteOptions(host=device.destination, port=kwargs.pop("port", device.port),
                         ssh_options=tuple(device.options()), **kwargs)


def test_cli_verify_host_records_this_machine_and_its_speed(device, built, bundle, capsys):
    images = built[1]
    before = Bundle.open(bundle).manifest
    ssh = [f"--ssh-option={o}" for o in device.options()]
    assert cli.main(["verify", str(bundle), "--images", str(images), "--host-images", "2",
                     "--host", device.destination, "--port", str(device.port),
                     "--remote-python", sys.executable, *ssh]) == 0
    out = capsys.readouterr().out
    assert f"{core_name()} ({device.destination})" in out and "measured on" in out
    assert "host check of a Jetson artifact" in out and "over ssh: p50 ms" in out
    assert device.leftovers("verify") == []

    after = Bundle.open(bundle).manifest
    (key, entry), = after["artifacts"]["onnx"].pop("fidelity_by_cpu").items()
    before["artifacts"]["onnx"].pop("fidelity_by_cpu")
    after.pop("manifest_sha256"), before.pop("manifest_sha256")
    assert after == before  # nothing else changed
    assert key == here_key("onnxruntime", "onnxruntime")
    assert (entry["machine"], entry["cpu"], entry["emulated"], entry["images"]) == (
        platform.machine(), core_name(), False, 2)
    assert entry["runtime"].startswith("onnxruntime ") and entry["verdict"]["passed"]
    assert entry["stats"]["latency_p50_ms"] > 0 and entry["stats"]["latency_threads"] == 1

    chosen = sorted(images.iterdir())[::2]  # 2 of 4, picked evenly: the 1st and the 3rd
    plain = {r["target"]: r for r in verify_bundle(bundle, chosen)}["onnx"]
    for k in ("agreement_pct", "mismatches", "ties", "values", "images"):
        assert entry["stats"][k] == plain[k], (k, entry["stats"][k], plain[k])


def test_rows_name_the_cpu_and_keep_the_gate(device, built, bundle):
    rows = verify_remote(bundle, remote(device), sorted(built[1].iterdir())[:1],
                         BuildOptions(gate=GateOptions(min_agreement=100.0)))
    (row,) = [r for r in rows if r["target"] == "onnx"]
    assert row["measured_on"] == here_key("onnxruntime", "onnxruntime")
    assert row["cpu"] == f"{core_name()} ({device.destination})"
    assert row["images"] == 1 and row["latency_p50_ms"] > 0 and row["rule"]
    assert {r["target"] for r in rows if "skipped" in r} == {"tensorrt-fp16"}


@pytest.mark.parametrize("case", ["refused", "no-python", "script-fails", "timeout"])
def test_failures_are_remote_errors_and_leave_the_bundle(device, built, bundle, tmp_path, case):
    manifest = (bundle / "manifest.json").read_bytes()
    images = sorted(built[1].iterdir())[:1]
    stub = tmp_path / "stub-python"
    stub.write_text(STUB.format(python=sys.executable, hang=case == "timeout"))
    stub.chmod(0o755)
    timeout = 600
    if case == "refused":
        options, match = remote(device, port=device.free_port()), "connection refused.*--port"
    elif case == "no-python":
        options = remote(device, remote_python="no-such-python")
        match = r"sc2deploy is not installed for no-such-python on .*pip install"
    elif case == "script-fails":
        options = remote(device, remote_python=str(stub))
        match = (r"the device script on .* failed with exit code 1 \(install with pip install "
                 r"'sc2deploy\[device\]'\); the bundle is unchanged(.|\n)*No module named")
    else:
        options, timeout, match = remote(device, remote_python=str(stub)), 10, "timed out after 10"
    with pytest.raises(RemoteError, match=match):
        verify_remote(bundle, options, images, timeout_s=timeout)
    assert (bundle / "manifest.json").read_bytes() == manifest
    assert device.leftovers("verify") == []


def test_input_checks(device, bundle):
    with pytest.raises(UsageError, match="--host-images 0: expected at least 1"):
        verify_remote(bundle, remote(device), host_images=0)
    with pytest.raises(UsageError, match="no host given"):
        verify_remote(bundle, RemoteOptions())
    with pytest.raises(UsageError, match="remote python '' is invalid"):
        verify_remote(bundle, remote(device, remote_python=""))
    assert cli.main(["verify", str(bundle), "--host", device.destination,
                     "--emulate", "cortex-a76"]) == cli.EXIT_USER_ERROR
