"""Remote profiling over a real OpenSSH server on 127.0.0.1 (no mocks of ssh).

The ``device`` fixture (conftest.py) starts ``sshd -D`` with its own keys and config in a
temporary folder; the "device" is this machine, its Python is this venv's (or a stub that
behaves like a broken or slow device). Skipped, with the reason, when sshd cannot start.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sc2deploy.errors import RemoteError, UsageError
from sc2deploy.orchestrate.ssh.remote import parse_destination, profile_remote

# A stand-in for the device's Python: real `--version`, and a `profile` whose behavior the
# test picks with `--stub MODE` (complete, incomplete, partial, fail, sleep).
STUB = r'''#!{python}
import json, os, sys, time
args = sys.argv[1:]
if args[:3] != ["-m", "sc2deploy", "profile"]:
    os.execv({python!r}, [{python!r}, *args])
value = lambda flag: args[args.index(flag) + 1]
mode, out = value("--stub"), value("-o")
bundle, images = args[3], value("--images")
seen = {{"bundle_files": sorted(os.listdir(bundle)), "images": sorted(os.listdir(images)),
        "args": args}}
def write(complete):
    with open(out, "w") as f:
        json.dump({{"complete": complete, **seen}}, f)
if mode == "complete":
    print("stub: measured on the device")
    print("stub: progress", file=sys.stderr)
    write(True)
elif mode == "incomplete":
    write(False)
elif mode == "partial":
    write(False)
    sys.exit(130)
elif mode == "fail":
    print("stub: unknown target 'no-such-target'", file=sys.stderr)
    sys.exit(3)
elif mode == "sleep":
    with open({pidfile!r}, "w") as f:
        f.write(str(os.getpid()))
    try:
        time.sleep(120)
    except KeyboardInterrupt:
        write(False)
        sys.exit(130)
'''


def _stopped(pid: int, wait_s: float = 10) -> bool:
    """Whether ``pid`` is gone or a zombie (the container's init may reap it late)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def images(tmp_path):
    from sc2deploy.preprocess import sample_images

    folder = tmp_path / "images"
    folder.mkdir()
    for path in sample_images()[:2]:
        shutil.copy(path, folder)
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture
def stub(tmp_path):
    path = tmp_path / "stub-python"
    path.write_text(STUB.format(python=sys.executable, pidfile=str(tmp_path / "stub.pid")))
    path.chmod(0o755)
    return path


def run(device, bundle, images, args, out, **kwargs):
    kwargs.setdefault("remote_python", sys.executable)
    kwargs.setdefault("ssh_options", device.options())
    return profile_remote(device.destination, bundle.path, images, args, out,
                          port=device.port, **kwargs)


# --- the round trip ------------------------------------------------------------------------

def test_cli_host_round_trip(device, demo_bundle, images, tmp_path, capsys):
    from sc2deploy.cli import main

    out = tmp_path / "cli.json"
    ssh = [f"--ssh-option={o}" for o in device.options()]
    assert main(["profile", str(demo_bundle.path), "--images", str(images), "--host",
                 device.destination, "--port", str(device.port), "--remote-python",
                 sys.executable, *ssh, "--runs", "2", "--warmup", "0", "--energy", "none",
                 "--link", "lora-sx1276-20dbm", "--label", "remote/onnx", "-o", str(out)]) == 0
    assert f"measured on {device.destination}" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert doc["complete"] and doc["label"] == "remote/onnx" and doc["runs"]["measured"] == 2
    assert doc["link"]["name"] == "lora-sx1276-20dbm"
    assert device.leftovers() == []


def test_per_op_over_host_brings_the_trace_back(device, demo_bundle, images, tmp_path, capsys):
    """--per-op runs on the device; its raw trace comes back beside the results, which name
    it, and the figure is drawn here."""
    from sc2deploy.cli import main

    out = tmp_path / "res" / "dev.json"
    ssh = [f"--ssh-option={o}" for o in device.options()]
    assert main(["profile", str(demo_bundle.path), "--images", str(images), "--host",
                 device.destination, "--port", str(device.port), "--remote-python",
                 sys.executable, *ssh, "--per-op", "--runs", "3", "--warmup", "1",
                 "--energy", "none", "--no-baselines", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    doc = json.loads(out.read_text())
    entry = doc["per_op"]
    assert entry["available"] and entry["runs"] == 3 and entry["trace"] == "dev.ort-trace.json"
    events = json.loads(out.with_name("dev.ort-trace.json").read_text())
    assert {e["name"][:-len("_kernel_time")] for e in events
            if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")} == \
        {n["name"] for n in entry["nodes"]}
    assert "raw trace: dev.ort-trace.json" in printed and "per-op figure: " in printed
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "dev.json", "dev.ort-trace.json", "dev.per-op.png"]
    assert device.leftovers() == []


def test_round_trip_measures_on_the_device(device, demo_bundle, images, tmp_path):
    out = tmp_path / "res" / "results.json"
    doc = run(device, demo_bundle, images,
              ["--target", "onnx", "--runs", "2", "--warmup", "1", "--energy", "none"], out)
    assert doc["complete"] is True
    assert doc["runs"]["measured"] == 2 and doc["runs"]["image_files"] == 2  # notes.txt stayed
    assert doc["target"] == "onnx"
    assert out.is_file() and not (tmp_path / "res" / "results.partial.json").exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["results.json"]  # no temp files
    assert device.leftovers() == []


def test_remote_profile_failure_names_the_bad_target(device, demo_bundle, images, tmp_path):
    out = tmp_path / "results.json"
    with pytest.raises(RemoteError, match=r"(?s)failed with exit code 2.*no-such-target"):
        run(device, demo_bundle, images, ["--target", "no-such-target", "--runs", "2",
                                          "--energy", "none"], out)
    assert not out.exists()
    assert device.leftovers() == []


def test_stub_round_trip_copies_bundle_and_only_images(device, demo_bundle, images, stub,
                                                       tmp_path, capsys):
    out = tmp_path / "results.json"
    doc = run(device, demo_bundle, images, ["--stub", "complete", "--label", "a b"], out,
              remote_python=str(stub))
    assert doc["images"] == sorted(p.name for p in images.iterdir() if p.suffix == ".jpg")
    assert doc["bundle_files"] == sorted(p.name for p in demo_bundle.path.iterdir())
    assert doc["args"][-4:] == ["--stub", "complete", "--label", "a b"]  # quoting survived
    assert out.is_file() and device.leftovers() == []
    captured = capsys.readouterr()  # the remote output reached ours
    assert "stub: measured on the device" in captured.out and "stub: progress" in captured.err


@pytest.mark.parametrize("mode, message", [
    ("partial", r"exit code 130.*results\.partial\.json"),
    ("incomplete", r"did not complete \(its results say complete: False\).*results\.partial\.json"),
])
def test_incomplete_results_are_kept_as_partial_and_raise(device, demo_bundle, images, stub,
                                                          tmp_path, mode, message):
    out = tmp_path / "results.json"
    with pytest.raises(RemoteError, match=message):
        run(device, demo_bundle, images, ["--stub", mode], out, remote_python=str(stub))
    assert not out.exists()
    assert (tmp_path / "results.partial.json").is_file()
    assert device.leftovers() == []


def test_remote_failure_reports_exit_code_and_stderr(device, demo_bundle, images, stub, tmp_path):
    with pytest.raises(RemoteError, match=r"(?s)exit code 3.*unknown target 'no-such-target'"):
        run(device, demo_bundle, images, ["--stub", "fail"], tmp_path / "r.json",
            remote_python=str(stub))
    assert device.leftovers() == []


def test_timeout_kills_the_run_keeps_partial_results_and_cleans_up(device, demo_bundle, images,
                                                                   stub, tmp_path):
    out = tmp_path / "results.json"
    start = time.monotonic()
    # 20 s: the check, mkdir and two copies come first (a few seconds on busy cores), so
    # the deadline falls in the run; the stub would sleep 120 s
    with pytest.raises(RemoteError, match=r"timed out after 20 s.*results\.partial\.json"):
        run(device, demo_bundle, images, ["--stub", "sleep"], out, remote_python=str(stub),
            timeout=20)
    assert time.monotonic() - start < 100  # not the stub's 120 s
    assert not out.exists() and (tmp_path / "results.partial.json").is_file()
    assert _stopped(int((tmp_path / "stub.pid").read_text()))  # not left running
    assert device.leftovers() == []


def test_ctrl_c_stops_the_remote_run_and_keeps_partial_results(device, demo_bundle, images,
                                                               stub, tmp_path):
    out = tmp_path / "results.json"
    code = ("import sys\n"
            "from sc2deploy.errors import RemoteError\n"
            "from sc2deploy.orchestrate.ssh.remote import profile_remote\n"
            "try:\n"
            f"    profile_remote({device.destination!r}, {str(demo_bundle.path)!r}, "
            f"{str(images)!r}, ['--stub', 'sleep'], {str(out)!r}, port={device.port}, "
            f"remote_python={str(stub)!r}, ssh_options={device.options()!r})\n"
            "except RemoteError as exc:\n"
            "    print('RemoteError:', exc)\n")
    code = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n" + code
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    pidfile = tmp_path / "stub.pid"
    deadline = time.monotonic() + 60
    while not (pidfile.exists() and pidfile.read_text()):
        assert child.poll() is None and time.monotonic() < deadline, "the stub never started"
        time.sleep(0.1)
    child.send_signal(signal.SIGINT)  # what Ctrl-C sends (here to Python only, not to ssh)
    stdout, _ = child.communicate(timeout=60)
    assert "RemoteError: the remote run on" in stdout and "interrupted (Ctrl-C)" in stdout
    assert "results.partial.json" in stdout
    assert (tmp_path / "results.partial.json").is_file() and not out.exists()
    assert _stopped(int(pidfile.read_text()))
    assert device.leftovers() == []


# --- connection errors ---------------------------------------------------------------------

def test_connection_refused(device, demo_bundle, images, tmp_path):
    with pytest.raises(RemoteError, match="connection refused.*--port"):
        profile_remote(f"{device.user}@127.0.0.1", demo_bundle.path, images, [],
                       tmp_path / "r.json", port=device.free_port(), ssh_options=device.options())


def test_wrong_key_is_an_authentication_failure(device, demo_bundle, images, tmp_path):
    other = device.keygen(tmp_path / "other_key")
    with pytest.raises(RemoteError, match="authentication failed.*Permission denied"):
        run(device, demo_bundle, images, [], tmp_path / "r.json",
            ssh_options=device.options(key=other))


def test_silent_host_times_out(device, demo_bundle, images, tmp_path):
    with socket.socket() as silent:  # accepts TCP connections, never speaks SSH
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        start = time.monotonic()
        # ssh's own ConnectTimeout (2 s, the user's value wins) fires long before ours
        with pytest.raises(RemoteError, match="did not answer in time"):
            profile_remote("127.0.0.1", demo_bundle.path, images, [], tmp_path / "r.json",
                           port=silent.getsockname()[1], timeout=60,
                           ssh_options=[*device.options(), "-o", "ConnectTimeout=2"])
        assert time.monotonic() - start < 60


@pytest.mark.parametrize("python", ["/bin/false", "/usr/bin/python3", "no-such-python"])
def test_missing_remote_sc2deploy(device, demo_bundle, images, tmp_path, python):
    if python == "/usr/bin/python3":
        probe = subprocess.run([python, "-c", "import sc2deploy"], capture_output=True,
                               cwd=tmp_path) if os.path.exists(python) else None
        if probe is None or probe.returncode == 0:
            pytest.skip(f"{python} is missing or has sc2deploy installed")
    expected = (rf"sc2deploy is not installed for {python} on {device.user}@127\.0\.0\.1 "
                r"\(port \d+\): install with pip install 'sc2deploy\[device\]'")
    with pytest.raises(RemoteError, match=expected):
        run(device, demo_bundle, images, [], tmp_path / "r.json", remote_python=python)
    assert device.leftovers() == []


# --- input checks (no connection needed) ---------------------------------------------------

@pytest.mark.parametrize("destination, expected", [
    ("pi@raspberrypi.local", ("pi", "raspberrypi.local")),
    ("jetson", (None, "jetson")),
    ("root@10.0.0.7", ("root", "10.0.0.7")),
    ("me@[fe80::1%eth0]", ("me", "fe80::1%eth0")),
    ("nvidia@orin-nano_2", ("nvidia", "orin-nano_2")),
])
def test_parse_destination(destination, expected):
    assert parse_destination(destination) == expected


@pytest.mark.parametrize("destination, message", [
    ("", "empty SSH destination"),
    ("   ", "empty SSH destination"),
    ("pi@host name", "contains spaces"),
    ("-oProxyCommand=sh", "starts with '-'"),
    ("pi@-oProxyCommand=sh", "bad host"),
    ("@host", "bad user name"),
    ("pi@", "bad host"),
    ("pi@host;rm", "bad host"),
    ("pi@host\n", "contains spaces or control characters"),
])
def test_bad_destinations_are_refused(destination, message):
    with pytest.raises(UsageError, match=message):
        parse_destination(destination)


def test_reserved_profile_args_are_refused(demo_bundle, images, tmp_path):
    with pytest.raises(UsageError, match="sets '--out=x.json'.*passes --images and -o"):
        profile_remote("pi@host", demo_bundle.path, images, ["--out=x.json"], tmp_path / "r.json")
