"""Ctrl-C at random points and unwritable outputs: one line, nothing partial, nothing lost.

Real signals on real subprocesses; read-only outputs are read-only tmpfs mounts
(root ignores chmod), skipped with the reason where mounting is not allowed.
"""

import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TEMP_MARKS = (".sc2deploy-txn-", ".tmp", ".best", ".old-", ".sc2deploy-probe-")


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(folder: Path) -> list:
    return [p.name for p in folder.rglob("*") if any(m in p.name for m in TEMP_MARKS)]


def wait_until(proc, ready, what: str, timeout: float = 60) -> None:
    """Poll ``ready()`` until it is true or ``proc`` has exited; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and not ready():
        assert time.monotonic() < deadline, f"{what} not within {timeout} s"
        time.sleep(0.01)


def interrupt(args, after_line: str, delay_s: float, timeout: float = 600, count: int = 1,
              ready=None):
    """Start ``sc2deploy ARGS``; SIGINT ``delay_s`` after stderr has shown ``after_line``
    ``count`` times, or after ``ready()`` is true (or after the start, when both are None)."""
    proc = subprocess.Popen([sys.executable, "-m", "sc2deploy.cli", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    deadline = time.monotonic() + timeout
    for line in proc.stderr if after_line is not None else ():
        lines.append(line)
        count -= after_line in line
        if count <= 0 or time.monotonic() > deadline:
            break
    if ready is not None:
        wait_until(proc, ready, ready.__name__)
    time.sleep(delay_s)
    sent = proc.poll() is None
    if sent:
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, "".join(lines) + err, sent


def assert_one_line_interrupt(rc, err, command):
    assert rc == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"sc2deploy {command}: interrupted"), last


@pytest.fixture(scope="module")
def built_int8(demo_bundle, tmp_path_factory):
    from sc2deploy.builders.build import BuildOptions, build_targets

    dst = tmp_path_factory.mktemp("int8") / "bundle"
    shutil.copytree(demo_bundle.path, dst)
    build_targets(dst, ["onnx-int8"], BuildOptions(latency_runs=1, search=True))
    return dst


@pytest.fixture()
def bundle_with_int8(built_int8, tmp_path):
    """A bundle with a passing onnx-int8 artifact (a copy per test)."""
    dst = tmp_path / "bundle"
    shutil.copytree(built_int8, dst)
    return dst


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ctrl_c_during_build_search_leaves_the_bundle_as_it_was(bundle_with_int8, seed):
    before = snapshot(bundle_with_int8)
    rng = random.Random(seed)  # during candidate 1..6 of the eight the search tries
    candidate, delay = rng.randint(0, 5), rng.uniform(0.0, 1.0)
    args = ["build", bundle_with_int8, "--target", "onnx-int8", "--search", "--min-agreement",
            "100"]
    if candidate == 0:
        rc, _, err, sent = interrupt(args, "building onnx-int8", delay)
    else:
        rc, _, err, sent = interrupt(args, "  tried ", delay, count=candidate)
    assert sent, f"the search ended before the signal (candidate {candidate}, {delay:.2f} s)"
    assert_one_line_interrupt(rc, err, "build")
    assert snapshot(bundle_with_int8) == before
    assert leftovers(bundle_with_int8) == []
    assert subprocess.run([sys.executable, "-m", "sc2deploy.cli", "info", bundle_with_int8],
                          capture_output=True).returncode == 0


@pytest.mark.parametrize("seed", [4, 5])
def test_ctrl_c_during_export_keeps_the_old_bundle(bundle_with_int8, seed):
    before = snapshot(bundle_with_int8)
    delay = random.Random(seed).uniform(0.0, 1.5)  # the whole export takes ~3 s here
    rc, out, err, sent = interrupt(["export", "demo", "--out", bundle_with_int8, "--force"],
                                   "loading checkpoint", delay)
    assert leftovers(bundle_with_int8.parent) == []
    if "bundle written" in out:  # the signal came after the export: a new, valid bundle
        assert run("info", bundle_with_int8).returncode == 0
        pytest.skip(f"export finished within {delay:.2f} s of loading, before the signal")
    assert_one_line_interrupt(rc, err, "export")
    assert snapshot(bundle_with_int8) == before


@pytest.fixture()
def read_only(tmp_path):
    """A read-only folder (a tmpfs mounted ro), as root; skipped where mounting is refused."""
    folder = tmp_path / "ro"
    folder.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=8m", "tmpfs", str(folder)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {result.stderr.strip()}")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def run(*args):
    return subprocess.run([sys.executable, "-m", "sc2deploy.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("args,what", [
    (["export", "demo", "--out", "{ro}/b"], "the bundle's parent folder"),
    (["profile", "{bundle}", "--runs", "1", "--energy", "none", "-o", "{ro}/r.json"],
     "the folder of the results file"),
    (["profile-server", "{bundle}", "--runs", "1", "-o", "{ro}/s.json"],
     "the folder of the results file"),
    (["encode", "{bundle}", "{image}", "-o", "{ro}/c"], "--out"),
    (["demo", "--out", "{ro}/demo"], "the demo folder"),
])
def test_unwritable_output_is_one_line_before_any_work(read_only, demo_bundle, args, what):
    from sc2deploy.preprocess import sample_images

    start = time.monotonic()
    result = run(*[a.format(ro=read_only, bundle=demo_bundle.path, image=sample_images()[0])
                   for a in args])
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert what in lines[0] and "not writable" in lines[0] and "choose a folder" in lines[0]
    assert "•" not in result.stderr  # no step started
    assert time.monotonic() - start < 60


def test_build_into_a_read_only_bundle_is_one_line(read_only, demo_bundle):
    subprocess.run(["mount", "-o", "remount,rw", str(read_only)], check=True)
    shutil.copytree(demo_bundle.path, read_only / "b")
    subprocess.run(["mount", "-o", "remount,ro", str(read_only)], check=True)
    result = run("build", read_only / "b", "--target", "onnx-fp16")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "bundle" in result.stderr and "not writable" in result.stderr
    assert run("info", read_only / "b").returncode == 0  # read-only bundles still open


def test_broken_pipe_is_silent(demo_bundle):
    shell = f"{sys.executable} -m sc2deploy.cli info {demo_bundle.path} --json | head -n 1"
    result = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "{"
    assert result.stderr == "", result.stderr


@pytest.mark.parametrize("seed", [6, 7])
def test_ctrl_c_during_report_keeps_the_earlier_report(tmp_path, seed):
    from tests.helpers.results_factory import make_result

    from sc2deploy.results.schema import write_results

    files = [write_results(make_result(label=f"demo/{t}", target=t), tmp_path / f"{t}.json")
             for t in ("onnx", "tflite")]
    out = tmp_path / "report"
    assert run("report", *files, "-o", out).returncode == 0
    before = snapshot(out)

    def drawing():  # a first figure is staged: matplotlib is imported, ~1-4 s of drawing left
        try:
            return any(out.glob(".report-*/*.svg"))
        except FileNotFoundError:  # the staging folder went meanwhile: the report is done
            return True

    delay = random.Random(seed).uniform(0.0, 0.5)
    rc, out_text, err, sent = interrupt(["report", files[0], "-o", out], None, delay,
                                        ready=drawing)
    assert leftovers(out) == []
    if not sent or "report written" in out_text:
        pytest.skip(f"the report was written within {delay:.2f} s, before the signal")
    assert_one_line_interrupt(rc, err, "report")
    assert snapshot(out) == before and leftovers(out) == []


def test_ctrl_c_during_demo_keeps_the_earlier_demo_bundle(demo_bundle, tmp_path):
    out = tmp_path / "demo"
    shutil.copytree(demo_bundle.path, out / "demo-bundle")
    before = snapshot(out)
    rc, _, err, sent = interrupt(["demo", "--out", out], "building onnx", 2.0)
    assert sent
    assert_one_line_interrupt(rc, err, "demo")
    assert "demo-bundle and" in err.strip().splitlines()[-1]
    assert err.strip().endswith("ladder are as they were")
    assert snapshot(out) == before and leftovers(out) == []
    assert sorted(p.name for p in out.iterdir()) == ["demo-bundle"]


# ---------------------------------------------------------------- issue 20: what users met

def one_error_line(capsys, command: str) -> str:
    """The one line a refused command printed on stderr."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"sc2deploy {command}: error: "), lines[0]
    return lines[0]


def test_profile_warns_only_about_unverified_artifacts_that_exist(demo_bundle, tmp_path,
                                                                  capsys):
    from sc2deploy.cli import main

    quick = ["--runs", "1", "--warmup", "0", "--energy", "none", "--no-baselines"]
    assert main(["profile", str(demo_bundle.path), *quick,  # export checked this CPU
                 "-o", str(tmp_path / "r.json")]) == 0
    assert "never verified" not in capsys.readouterr().err
    assert main(["profile", str(demo_bundle.path), "--target", "onnx-fp16", *quick,
                 "-o", str(tmp_path / "f.json")]) == 2
    assert "has no 'onnx-fp16' artifact" in one_error_line(capsys, "profile")


@pytest.mark.parametrize("command,args,message", [
    ("encode", ["{bundle}", "{folder}", "-o", "{tmp}/out"],
     "{folder} is a folder; encode takes image files: name them (e.g. {folder}/*.jpg)"),
    ("decode", ["{bundle}", "{folder}", "-o", "{tmp}/out/x.npy"],
     "{folder} is a folder; decode takes one file: a .s2c container or a batch of them"),
    ("export", ["entropic_student", "--checkpoint", "{folder}", "--out", "{tmp}/out/b"],
     "--checkpoint {folder} is a folder; expected one checkpoint file written by torch.save"),
])
def test_a_folder_where_a_file_is_expected_is_named_as_one(demo_bundle, tmp_path, capsys,
                                                            command, args, message):
    from sc2deploy.cli import main

    folder = tmp_path / "things"
    folder.mkdir()
    names = dict(bundle=demo_bundle.path, folder=folder, tmp=tmp_path)
    assert main([command, *(a.format(**names) for a in args)]) == 2
    line = one_error_line(capsys, command)
    assert message.format(**names) in line and "not found" not in line
    assert not (tmp_path / "out").exists()


def test_decode_into_a_folder_names_the_users_path(demo_bundle, tmp_path, capsys):
    from sc2deploy.cli import main
    from sc2deploy.preprocess import sample_images

    assert main(["encode", str(demo_bundle.path), str(sample_images()[0]), "-o",
                 str(tmp_path)]) == 0
    stream = next(tmp_path.glob("*.s2c"))
    capsys.readouterr()
    assert main(["decode", str(demo_bundle.path), str(stream), "-o", str(tmp_path)]) == 2
    line = one_error_line(capsys, "decode")
    assert f"--out {tmp_path} is a folder; decode writes one .npy file: name it, e.g. -o " \
           f"{tmp_path / stream.stem}.npy" in line
    assert ".tmp" not in line and not list(tmp_path.glob(".*"))


@pytest.mark.parametrize("command", ["encode", "report"])
def test_a_refused_command_leaves_no_output_folder(demo_bundle, tmp_path, capsys, command):
    from sc2deploy.cli import main

    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    bad_results = tmp_path / "bad.json"
    bad_results.write_text("{}")
    out = tmp_path / "new" / "out"
    args = (["encode", str(demo_bundle.path), str(bad), "-o", str(out)] if command == "encode"
            else ["report", str(bad_results), "-o", str(out)])
    assert main(args) == 2
    one_error_line(capsys, command)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jpg", "bad.json"]


def test_options_cannot_be_abbreviated():
    from sc2deploy.cli import main
    from sc2deploy.orchestrate.emulation.arm_check import parse_args

    result = run("serve", "some-bundle", "--token", "SECRET")  # not --token-file SECRET
    assert result.returncode == 2
    assert "unrecognized arguments: --token SECRET" in result.stderr
    for argv in (["--deb", "info", "b"], ["profile", "b", "--run", "3", "-o", "r.json"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    with pytest.raises(SystemExit):
        parse_args(["--wor", "w"])  # arm-check's --work


def test_build_shows_only_sc2deploys_own_lines(split_bundle, tmp_path):
    """litert-torch's converter loads torchao (CUDA kernels that fail to load on a CPU), absl
    and TFLite's C++ logging: none of it reaches the user; sc2deploy's lines all do."""
    from sc2deploy.targets import get_target

    missing = get_target("tflite").missing("build")
    if missing:
        pytest.skip(missing)
    bundle = tmp_path / "b"
    shutil.copytree(split_bundle.path, bundle)
    result = run("build", bundle, "--target", "tflite")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines and all(line.startswith(("• ", "  ")) for line in lines), result.stderr
    assert any(line.startswith("  tflite: ") and "passed" in line for line in lines)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_on_one_line(demo_bundle, tmp_path, signum):
    """SIGTERM used to end in Ray's stack dump (abort), SIGINT in its report of a failed
    graceful shutdown: both now stop the local Ray cluster and say so on one line."""
    import os
    import socket

    pytest.importorskip("ray", reason="Ray Serve is not installed (pip install 'sc2deploy[serve]')")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "sc2deploy.cli", "serve", demo_bundle.path,
                             "--port", str(port), "--token-file", tmp_path / "token"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        ready = proc.stdout.readline()
        assert ready.startswith("serving "), ready + proc.stderr.read()
        if signum == signal.SIGINT:  # Ctrl-C: the whole process group, Ray's processes too
            os.killpg(proc.pid, signum)
        else:  # kill PID
            proc.send_signal(signum)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert err.strip().splitlines()[-1] == "sc2deploy serve: stopped", err
    assert "graceful_shutdown" not in out + err and "SIGTERM received" not in err
    assert "Traceback" not in err
