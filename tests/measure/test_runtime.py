"""The device runtime on the demo bundle: stages, bytes, energy from fixture sensors, Ctrl-C."""

import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from sc2deploy.cli import main
from sc2deploy.targets.encoding import encode_images
from sc2deploy.errors import UsageError
from sc2deploy.results.schema import load_results
from sc2deploy.measure.runtime import ProfileOptions, profile

from tests.helpers.sensor_trees import PMIC, hwmon_chip, tx2_iio, write

QUICK = ["--runs", "4", "--warmup", "1", "--idle", "0.2", "--no-baselines"]


@pytest.fixture(scope="module")
def images(tmp_path_factory, few_images):
    folder = tmp_path_factory.mktemp("img")
    for p in few_images[:2]:
        (folder / p.name).write_bytes(p.read_bytes())
    return folder


def run(bundle, images, tmp_path, *extra):
    out = tmp_path / "r.json"
    assert main(["profile", str(bundle.path), "--images", str(images), *QUICK, *extra,
                 "-o", str(out)]) == 0
    return load_results([out])[0]


def test_stages_bytes_and_conditions(demo_bundle, images, tmp_path):
    doc = profile(ProfileOptions(bundle=demo_bundle.path, images=images, runs=6, warmup=1,
                                 energy="none", link="lora-sx1276-20dbm", progress=False))
    lat = doc["latency_ms"]
    assert set(lat) == {"load", "preprocess", "head", "code", "total"}
    assert all(s["n"] == 6 for s in lat.values())
    assert lat["total"]["mean"] == pytest.approx(
        sum(lat[s]["mean"] for s in ("load", "preprocess", "head", "code")))
    for s in lat.values():
        assert s["min"] <= s["p50"] <= s["p90"] <= s["p95"] <= s["p99"] <= s["max"]
    samples = doc["samples"]  # every image's times, the same images in every stage
    assert (samples["selection"], set(samples["latency_ms"])) == ("all", set(lat))
    for stage, times in samples["latency_ms"].items():
        assert len(times) == 6 and min(times) == pytest.approx(lat[stage]["min"], abs=1e-4)
    assert np.sum([samples["latency_ms"][s] for s in ("load", "preprocess", "head", "code")],
                  axis=0) == pytest.approx(samples["latency_ms"]["total"], abs=5e-4)
    expected = [len(d) for _, d in encode_images(demo_bundle, sorted(images.iterdir()))]
    assert doc["bytes"]["min"] == min(expected) and doc["bytes"]["max"] == max(expected)
    assert doc["bytes"]["mean"] == pytest.approx(np.mean(expected * 3))
    assert doc["complete"] and doc["runs"]["measured"] == 6 and doc["runs"]["stop"] == "runs"
    assert doc["runtime"].startswith("onnxruntime ")
    assert doc["conditions"]["packages"]["numpy"] == np.__version__
    assert doc["memory"]["peak_rss_mb"] > 10 and doc["throughput_ips"] > 0
    e2e = doc["end_to_end_ms"]
    assert e2e["link"] == pytest.approx(
        doc["link"]["delay_ms"]["mean"], rel=0.1) and e2e["server"] is None
    assert [b["name"] for b in doc["baselines"]] == ["jpeg-q75", "webp-q75"]
    energy = doc["energy"]  # --energy none: no source tried, no energy, nothing modeled
    assert (energy["kind"], energy["source"], energy["unavailable"], energy["joules_per_image"],
            energy["host_timed_on"]) == ("none", None, {}, None, None)


def test_profile_server_keeps_samples_and_no_decoder_stage_without_a_decoder(demo_bundle,
                                                                             images):
    from sc2deploy.measure.options import ServerOptions
    from sc2deploy.measure.server import profile_server
    from sc2deploy.results.schema import validate

    doc = validate(profile_server(ServerOptions(bundle=demo_bundle.path, images=images, runs=4,
                                                warmup=1, progress=False)))
    has_decoder = "file" in demo_bundle.manifest.get("decoder", {})
    stages = {"decode", "total"} | ({"decoder"} if has_decoder else set())
    assert set(doc["latency_ms"]) == stages and doc["decoder"]["present"] == has_decoder
    assert {s: len(t) for s, t in doc["samples"]["latency_ms"].items()} == dict.fromkeys(
        stages, 4)


@pytest.mark.parametrize("tree,watts", [
    (tx2_iio, 4.2),
    (lambda r: hwmon_chip(r, "1-0040", [("VDD_IN", 5000, 1000), ("VDD_CPU_GPU_CV", 5000, 300),
                                        ("VDD_SOC", 5000, 200)], 3), 5.0),
    (lambda r: (hwmon_chip(r, "1-0040", [("VDD_GPU_SOC", 1000, 2000), ("VDD_CPU_CV", 1000, 1000),
                                         ("VIN_SYS_5V0", 5000, 400)], 1),
                hwmon_chip(r, "1-0041", [("NC", 1, 1), ("VDDQ_VDD2_1V8AO", 1000, 500),
                                         ("NC", 1, 1)], 2)), 5.5),
    (lambda r: (write(r, "sys/class/hwmon/hwmon1/name", "ina226"),
                write(r, "sys/class/hwmon/hwmon1/power1_input", 2_750_000)), 2.75),
], ids=["tx2-iio", "orin-nano-hwmon", "agx-orin-no-vdd-in", "ina2xx"])
def test_fixture_sensor_trees_give_their_power(demo_bundle, images, tmp_path, tree, watts):
    root = tmp_path / "root"
    tree(root)
    doc = run(demo_bundle, images, tmp_path, "--sysfs-root", str(root))
    energy = doc["energy"]
    assert energy["kind"] == "measured"
    assert energy["mean_watts"] == pytest.approx(watts) and energy["idle_watts"] == \
        pytest.approx(watts)
    per_image_s = 1 / doc["throughput_ips"]
    assert energy["joules_per_image"]["total"] == pytest.approx(watts * per_image_s, rel=0.02)
    assert abs(energy["joules_per_image"]["dynamic"]) < 1e-9
    assert energy["sample_rate_hz"] > 20 and 0 <= energy["sampler_cpu_percent"] < 50


def test_pi5_pmic_command(demo_bundle, images, tmp_path):
    script = tmp_path / "vcgencmd.py"
    script.write_text(f"print({PMIC!r})\n")
    doc = run(demo_bundle, images, tmp_path, "--energy", "rpi5", "--pmic-command",
              f"{sys.executable} {script}", "--sample-interval", "50")
    assert doc["energy"]["source"] == "rpi5"
    assert doc["energy"]["mean_watts"] == pytest.approx(2.015)
    assert "after the PMIC" in doc["energy"]["detail"]


def test_rapl_counter_at_a_known_rate_across_wraps(demo_bundle, images, tmp_path):
    root = tmp_path / "root"
    zone = root / "sys/class/powercap/intel-rapl:0"
    write(root, "sys/class/powercap/intel-rapl:0/max_energy_range_uj", 1_000_000)
    write(root, "sys/class/powercap/intel-rapl:0/energy_uj", 0)
    stop = threading.Event()
    computed = []  # when each written value was computed

    def counter():  # 3 W: 3e6 uJ per second, wrapping at 1 J, written atomically every 1 ms
        start = time.perf_counter()
        while not stop.is_set():
            computed.append(time.perf_counter())
            tmp = zone / "energy_uj.tmp"
            tmp.write_text(f"{int(3e6 * (computed[-1] - start)) % 1_000_000}\n")
            os.replace(tmp, zone / "energy_uj")
            time.sleep(0.001)
        computed.append(time.perf_counter())

    thread = threading.Thread(target=counter, daemon=True)
    thread.start()
    try:
        doc = run(demo_bundle, images, tmp_path, "--sysfs-root", str(root), "--runs", "100",
                  "--idle", "1.0")
    finally:
        stop.set()
        thread.join()
    assert doc["energy"]["source"] == "rapl"
    loop_s = doc["runs"]["measured"] / doc["throughput_ips"]
    assert 3.0 * loop_s > 1.0, "the loop must span a wrap of the 1 J counter"
    # A value read is at most one writer gap old (the writer thread is late under load), so
    # each end of a window is off by at most 3 W x that gap; a real counter has no such lag.
    stale_s = float(np.max(np.diff(computed)))
    assert doc["energy"]["mean_watts"] == pytest.approx(3.0, rel=0.05, abs=6 * stale_s / loop_s)
    assert doc["energy"]["idle_watts"] == pytest.approx(3.0, rel=0.05, abs=6 * stale_s / 1.0)


PI4 = "Raspberry Pi 4 Model B Rev 1.4"
XEON = "Intel(R) Xeon(R) CPU E5-2690 v4 @ 2.60GHz"


def device_tree(root, model=None, cpu=None):
    """A fixture machine: its device-tree model (boards) and its /proc/cpuinfo CPU."""
    if model is not None:
        write(root, "proc/device-tree/model", f"{model}\x00")
    write(root, "proc/cpuinfo", f"processor\t: 0\nmodel name\t: {cpu or 'Cortex-A72'}\n")
    return root


def test_modeled_energy_on_its_device_needs_no_flag(demo_bundle, images, tmp_path):
    root = device_tree(tmp_path / "pi4", PI4)
    doc = run(demo_bundle, images, tmp_path, "--sysfs-root", str(root), "--energy", "model",
              "--device-profile", "rpi4")
    energy = doc["energy"]
    assert energy["kind"] == "modeled" and energy["source"] == "model:rpi4"
    assert energy["host_timed_on"] is None and doc["conditions"]["device_model"] == PI4
    assert "chipwired" in energy["detail"] and energy["sample_rate_hz"] is None
    assert energy["joules_per_image"]["total"] == pytest.approx(
        5.4 / doc["throughput_ips"], rel=0.02)
    assert energy["joules_per_image"]["ci95"] is None  # a model has no measurement precision


@pytest.mark.parametrize("model,cpu,energy", [
    (None, XEON, "model"), (None, XEON, "auto"),
    ("Raspberry Pi 5 Model B Rev 1.0", "Cortex-A76", "model"),
    ("NVIDIA Jetson Orin Nano Developer Kit", "ARMv8 Processor rev 1 (v8l)", "model")],
    ids=["x86", "x86-auto", "pi5", "orin-nano"])
def test_modeled_energy_elsewhere_is_refused_before_measuring(demo_bundle, images, tmp_path,
                                                              monkeypatch, capsys, model, cpu,
                                                              energy):
    from sc2deploy.measure import runtime

    root = device_tree(tmp_path / "elsewhere", model, cpu)

    def measured(*args, **kwargs):
        raise AssertionError("measured before refusing")

    monkeypatch.setattr(runtime, "load_runner", measured)
    detected = f"device model {re.escape(repr(model))}" if model else \
        r"no device model \(no /proc/device-tree/model, no Model line in /proc/cpuinfo\)"
    message = (rf"^--device-profile rpi4 is for a Raspberry Pi 4 Model B, but this machine is "
               rf"not one \(detected: {detected}, CPU '{re.escape(cpu)}'\): .*Run profile on "
               r"the device \(--host USER@DEVICE\), or pass --model-host-time to model anyway "
               r"with this machine's timings")
    options = ProfileOptions(bundle=demo_bundle.path, images=images, energy=energy,
                             device_profile="rpi4", sysfs_root=root, progress=False)
    with pytest.raises(UsageError, match=message):
        profile(options)
    out = tmp_path / "r.json"
    assert main(["profile", str(demo_bundle.path), "--images", str(images), "--sysfs-root",
                 str(root), "--energy", energy, "--device-profile", "rpi4", *QUICK,
                 "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--model-host-time" in err[0] and not out.exists()


def test_model_host_time_labels_json_and_reports(demo_bundle, images, tmp_path):
    pytest.importorskip("matplotlib", reason="reports need matplotlib")
    import csv

    from sc2deploy.report.document import write_report

    root = device_tree(tmp_path / "x86", None, XEON)
    doc = run(demo_bundle, images, tmp_path, "--sysfs-root", str(root), "--energy", "model",
              "--device-profile", "rpi4", "--model-host-time")
    energy = doc["energy"]
    assert energy["kind"] == "modeled" and energy["host_timed_on"] == XEON
    assert doc["conditions"]["cpu"] == XEON and energy["joules_per_image"]["ci95"] is None
    write_report([doc], tmp_path / "rep")
    md = (tmp_path / "rep" / "report.md").read_text()
    row = next(l for l in md.split("## Energy per image")[1].splitlines()
               if l.startswith(f"| {doc['label']} |"))
    assert f"modeled (rpi4, host-timed on {XEON})" in row
    assert f"(modeled, host-timed on {XEON})" in row and "none: modeled" in row
    (csv_row,) = csv.DictReader((tmp_path / "rep" / "results.csv").open(newline=""))
    assert csv_row["energy_label"] == f"modeled (rpi4, host-timed on {XEON})"
    assert csv_row["energy_host_timed_on"] == XEON


@pytest.mark.parametrize("name,model,matches", [
    ("rpi4", "Raspberry Pi 4 Model B Rev 1.4", True),
    ("rpi4", "Raspberry Pi 4 Model B Rev 1.5", True),
    ("rpi4", "Raspberry Pi 400 Rev 1.0", False),
    ("rpi4", "Raspberry Pi 5 Model B Rev 1.0", False),
    ("rpi4", None, False),
    ("jetson-nano", "NVIDIA Jetson Nano Developer Kit", True),
    ("jetson-nano-5w", "NVIDIA Jetson Nano 2GB Developer Kit", True),
    ("jetson-nano", "NVIDIA Jetson Orin Nano Developer Kit", False),
    ("jetson-orin-nano", "NVIDIA Jetson Orin Nano Developer Kit", True),
    ("jetson-orin-nano-7w", "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super",
     True),
    ("jetson-orin-nano", "NVIDIA Jetson Nano Developer Kit", False),
    ("jetson-orin-nano", "NVIDIA Jetson AGX Orin Developer Kit", False),
])
def test_profiles_match_their_device_only(name, model, matches):
    from sc2deploy.measure.energy_models import PROFILES

    assert PROFILES[name].matches(model) is matches


def test_pi_kernels_cpuinfo_model_names_the_device_without_a_device_tree(tmp_path):
    from sc2deploy.measure.conditions import device_model

    root = tmp_path / "container"
    write(root, "proc/cpuinfo", "processor\t: 0\nCPU part\t: 0xd08\n\nHardware\t: BCM2835\n"
                                f"Model\t\t: {PI4}\n")
    assert device_model(root) == PI4
    assert device_model(device_tree(tmp_path / "x86", None, XEON)) is None


def test_model_host_time_options_and_remote_argv(demo_bundle):
    from sc2deploy.measure.options import remote_argv
    from sc2deploy.orchestrate.sweep import PROFILE_KEYS

    options = ProfileOptions(bundle=demo_bundle.path, energy="model", device_profile="rpi4",
                             model_host_time=True)
    argv = remote_argv(options)
    assert argv[argv.index("--model-host-time") + 1].startswith("--")  # a switch, no value
    assert "--model-host-time" not in remote_argv(ProfileOptions(bundle=demo_bundle.path))
    assert "model_host_time" in PROFILE_KEYS
    with pytest.raises(UsageError, match="--model-host-time applies to modeled energy: .*got "
                                         "--energy rapl and no --device-profile"):
        ProfileOptions(bundle=demo_bundle.path, energy="rapl", model_host_time=True)
    with pytest.raises(UsageError, match="model_host_time must be true or false, got 'yes'"):
        ProfileOptions(bundle=demo_bundle.path, energy="model", device_profile="rpi4",
                       model_host_time="yes")


def test_unavailable_sensors_are_reported_not_raised(demo_bundle, images, tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    doc = run(demo_bundle, images, tmp_path, "--sysfs-root", str(root), "--pmic-command",
              "/nonexistent/vcgencmd")
    energy = doc["energy"]
    assert energy["kind"] == "none" and energy["joules_per_image"] is None
    assert set(energy["unavailable"]) == {"jetson", "ina2xx", "rpi5", "rapl"}
    assert "no RAPL zone" in energy["unavailable"]["rapl"]


def test_bad_options_fail_clearly(demo_bundle, images, tmp_path, capsys):
    assert main(["profile", str(demo_bundle.path), "--energy", "jetson", "--sysfs-root",
                 str(tmp_path), "-o", str(tmp_path / "r.json")]) == 2
    assert "energy source 'jetson' is unavailable: no INA3221" in capsys.readouterr().err
    assert main(["profile", str(demo_bundle.path), "--energy", "model", "--device-profile",
                 "rpi5", "-o", str(tmp_path / "r.json")]) == 2
    assert "use --energy rpi5" in capsys.readouterr().err
    assert main(["profile", str(demo_bundle.path), "--target", "tflite",
                 "-o", str(tmp_path / "r.json")]) == 2
    assert "build it first" in capsys.readouterr().err
    with pytest.raises(UsageError, match="--runs must be >= 1"):
        ProfileOptions(bundle=demo_bundle.path, runs=0)
    assert not (tmp_path / "r.json").exists()


def _drain(fd: int) -> None:
    """Read a terminal until its other end is closed."""
    try:
        while os.read(fd, 4096):
            pass
    except OSError:
        pass


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_writes_partial_results_atomically(demo_bundle, images, tmp_path, signum):
    """SIGINT with no earlier results: the partial ones go to -o. SIGTERM over an earlier
    (complete) file: it stays byte-identical, the partial results go beside it."""
    out = tmp_path / "partial.json"
    earlier = b'{"an earlier complete run": true}\n'
    if signum == signal.SIGTERM:
        out.write_bytes(earlier)
    # stderr is a terminal, so that the progress bar (quiet elsewhere) shows the images measured
    terminal, child_end = pty.openpty()
    # SIGINT ignored at start, as in a background job of a script: profile still stops on it
    proc = subprocess.Popen(
        [sys.executable, "-m", "sc2deploy", "profile", str(demo_bundle.path), "--images",
         str(images), "--runs", "100000", "--warmup", "1", "--energy", "none", "-o", str(out)],
        stdout=subprocess.PIPE, stderr=child_end, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    os.close(child_end)
    seen = b""
    while not re.search(rb"profile:[^\r]*\| *[1-9][0-9]*/100000", seen):  # measuring started
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # EIO: the child has closed the terminal
            chunk = b""
        assert chunk, f"profile ended before measuring: {seen[-2000:]!r}"
        seen += chunk
    drain = threading.Thread(target=_drain, args=(terminal,), daemon=True)
    drain.start()  # the child never blocks on a full terminal
    time.sleep(0.5)
    proc.send_signal(signum)
    stdout, _ = proc.communicate(timeout=60)
    drain.join(timeout=10)
    os.close(terminal)
    assert proc.returncode == 130
    written = out if signum == signal.SIGINT else tmp_path / "partial.partial.json"
    assert "PARTIAL results" in stdout and f"written to {written}" in stdout
    doc = json.loads(written.read_text())
    assert doc["complete"] is False and doc["runs"]["stop"] == "interrupted"
    assert doc["runs"]["measured"] > 0 and doc["latency_ms"]["total"]["n"] == \
        doc["runs"]["measured"]
    if signum == signal.SIGTERM:
        assert out.read_bytes() == earlier and f"{out} is as it was" in stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"partial.json", written.name})


def test_host_options_that_name_local_files_are_refused(demo_bundle, images, tmp_path, capsys):
    out = str(tmp_path / "r.json")
    assert main(["profile", str(demo_bundle.path), "--host", "pi@device", "-o", out]) == 2
    assert "--host needs --images DIR" in capsys.readouterr().err
    assert main(["profile", str(demo_bundle.path), "--host", "pi@device", "--images",
                 str(images), "--link", str(tmp_path / "mine.json"), "-o", out]) == 2
    assert "--link FILE is local" in capsys.readouterr().err


def test_pi5_tree_with_its_own_vcgencmd(demo_bundle, images, tmp_path):
    root = tmp_path / "pi5"
    write(root, "proc/device-tree/model", "Raspberry Pi 5 Model B Rev 1.0")
    write(root, "sys/class/thermal/thermal_zone0/type", "cpu-thermal")
    write(root, "sys/class/thermal/thermal_zone0/temp", 51250)
    tool = root / "usr/bin/vcgencmd"
    tool.parent.mkdir(parents=True)
    tool.write_text(f"#!{sys.executable}\nimport sys\nassert sys.argv[1:] == ['pmic_read_adc']\n"
                    f"print({PMIC!r})\n")
    tool.chmod(0o755)
    doc = run(demo_bundle, images, tmp_path, "--sysfs-root", str(root), "--sample-interval",
              "50")
    assert doc["energy"]["source"] == "rpi5"
    assert doc["energy"]["mean_watts"] == pytest.approx(2.015)
    assert doc["conditions"]["device_model"] == "Raspberry Pi 5 Model B Rev 1.0"
    assert doc["conditions"]["temperatures_c"]["before"] == {"cpu-thermal": 51.25}
