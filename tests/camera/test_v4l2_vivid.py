"""V4L2 capture against a real kernel driver: vivid, in a VM (tests/helpers/vivid_vm.py).

The guest runs the checks below once (``GUEST``) and prints what it saw as JSON; the tests
judge it here. vivid's webcam input shows 75 % colour bars under a text overlay, at
discrete sizes (320x180, 640x360, 640x480, ...), about 30 frames per second.
"""

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import vivid_vm

BARS = [(191, 191, 191), (191, 191, 0), (0, 191, 191), (0, 191, 0), (191, 0, 191),
        (191, 0, 0), (0, 0, 191), (0, 0, 0)]  # 75 % colour bars: white ... black
ROOT = Path(__file__).resolve().parents[2]  # the guest's PYTHONPATH: tests.helpers.service_front

GUEST = r'''
import json, os, subprocess, sys, time, traceback
import numpy as np
from sc2deploy.camera.source import open_camera
from sc2deploy.camera.v4l2 import V4L2Camera
OUT = os.environ["GUEST_OUT"]
report = {}

def check(name, fn):
    try:
        report[name] = fn()
    except BaseException as exc:
        report[name] = {"error": f"{type(exc).__name__}: {exc}",
                        "trace": traceback.format_exc()[-1500:]}

def bars(img):
    a = np.asarray(img)
    row = a[a.shape[0] * 7 // 8]  # below the text overlay
    return [row[int((i + 0.5) * a.shape[1] / 8)].tolist() for i in range(8)], a

def busy():
    with V4L2Camera("/dev/video0"):
        try:
            V4L2Camera("/dev/video0").close()
        except Exception as exc:
            return {"type": type(exc).__name__, "message": str(exc)}
    return {"type": None}

def formats():
    out, arrays = {}, {}
    for fmt in ("YUYV", "RGB3", "GREY"):
        with open_camera("/dev/video0", size=(640, 480), pixelformat=fmt) as cap:
            frames = [cap.next() for _ in range(2)]
            img = cap.decode(frames[-1].data)
            summary = cap.summary()
        out[fmt], arrays[fmt] = bars(img)
        out[fmt + "_size"] = [summary["width"], summary["height"], *img.size]
    low = slice(arrays["RGB3"].shape[0] * 3 // 4, None)  # rows under the overlay
    diff = np.abs(arrays["YUYV"][low].astype(int) - arrays["RGB3"][low].astype(int))
    out["yuyv_vs_rgb3_max"] = int(diff.max())
    out["grey_channels_equal"] = bool((arrays["GREY"][..., 0] == arrays["GREY"][..., 2]).all())
    with V4L2Camera("/dev/video0") as cam:
        out["offered"] = cam.offered
    return out

def adjusted():
    with open_camera("/dev/video0", size=(320, 240), pixelformat="YUYV") as cap:
        img = cap.decode(cap.next().data)
        s = cap.summary()
    return {"set": [s["width"], s["height"]], "image": list(img.size), "card": s["card"]}

def fresh():
    # frames come when the emulated CPU gets to vivid's thread: wait for two newer frames
    # (not a time) between takes; [sequence, age ms, frames captured before the take]
    with open_camera("/dev/video0", size=(320, 180)) as cap:
        taken = []
        for _ in range(4):
            if taken:
                deadline = time.monotonic() + 120
                while cap.captured < taken[-1][0] + 3 and time.monotonic() < deadline:
                    time.sleep(0.05)
            captured = cap.captured
            f = cap.next()
            taken.append([f.sequence, (time.monotonic_ns() - f.captured_ns) / 1e6, captured])
        return {"taken": taken, "summary": cap.summary()}

def refused(fmt):
    try:
        V4L2Camera("/dev/video0", pixelformat=fmt).close()
    except Exception as exc:
        return {"type": type(exc).__name__, "message": str(exc)}
    return {"type": None}

def stream():
    from tests.helpers.service_front import ServiceFront  # PYTHONPATH: the repository root
    from sc2deploy.bundle import Bundle
    TOKEN = "stream-test-token-0123456789"
    front = ServiceFront([Bundle.open(f"{OUT}/bundle")], TOKEN)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "sc2deploy", "stream", f"{OUT}/bundle", "--server", front.url,
             "--camera", "/dev/video0", "--camera-size", "640x480", "--frames", "3",
             "-o", f"{OUT}/stream.json"], capture_output=True, text=True, timeout=600,
            env=dict(os.environ, SC2DEPLOY_TOKEN=TOKEN))
    finally:
        front.close()
    doc = json.loads(open(f"{OUT}/stream.json").read()) if proc.returncode == 0 else None
    return {"rc": proc.returncode, "stdout": proc.stdout[-2000:], "stderr": proc.stderr[-2000:],
            "doc": doc}

check("formats", formats)
check("adjusted", adjusted)
check("fresh", fresh)
check("not_offered", lambda: refused("MJPG"))
check("not_supported", lambda: refused("NV12"))
check("busy", busy)
check("stream", stream)
print("REPORT " + json.dumps(report))
'''


@pytest.fixture(scope="module")
def guest(tmp_path_factory, split_bundle):
    reason = vivid_vm.missing()
    if reason:
        print("skipped:", reason)
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("vivid")
    shutil.copytree(split_bundle.path, folder / "out" / "bundle")
    rc, log, console = vivid_vm.run_in_guest(folder, GUEST, timeout_s=900,
                                             env={"PYTHONPATH": str(ROOT)})
    lines = [line for line in log.splitlines() if line.startswith("REPORT ")]
    assert rc == 0 and lines, f"guest exit {rc}\n{log[-3000:]}\nconsole:\n{console[-2000:]}"
    return json.loads(lines[-1][len("REPORT "):])


def ok(report: dict, name: str):
    value = report[name]
    assert "error" not in value, f"{name} failed in the guest: {value}"
    return value


def close(a, b, tol):
    return all(abs(x - y) <= tol for x, y in zip(a, b))


def test_yuyv_rgb3_and_grey_frames_decode_to_the_colour_bars(guest):
    f = ok(guest, "formats")
    assert {"YUYV", "RGB3", "GREY"} <= set(f["offered"])
    assert f["RGB3"] == [list(b) for b in BARS]  # RGB3: the driver's own bytes
    assert all(close(got, want, 3) for got, want in zip(f["YUYV"], BARS)), f["YUYV"]
    assert f["yuyv_vs_rgb3_max"] <= 3  # YUYV: only the conversion's rounding
    grey = [g[0] for g in f["GREY"]]
    assert f["grey_channels_equal"] and grey == sorted(grey, reverse=True)  # bars by luma
    assert len(set(grey)) == 8
    for fmt in ("YUYV", "RGB3", "GREY"):
        assert f[fmt + "_size"] == [640, 480, 640, 480]


def test_the_size_the_driver_sets_is_the_size_reported(guest):
    a = ok(guest, "adjusted")
    assert a["card"] == "vivid"
    assert a["set"] == a["image"] and a["set"] != [320, 240]  # vivid's webcam: 320x180


def test_the_newest_frame_is_taken_and_the_rest_counted(guest):
    f = ok(guest, "fresh")
    sequences = [s for s, _, _ in f["taken"]]
    assert all(s >= captured - 1 for s, _, captured in f["taken"]), f["taken"]  # the newest
    assert all(b - a >= 2 for a, b in zip(sequences, sequences[1:])), f["taken"]  # one skipped
    assert sequences[-1] - sequences[0] >= 6
    frames = f["summary"]["frames"]
    assert frames["taken"] == 4 and frames["skipped"] >= sequences[-1] - sequences[0] - 3
    assert f["summary"]["format"] == "YUYV"  # vivid offers no MJPG: the next preference


def test_formats_not_offered_or_not_supported_are_refused(guest):
    assert guest["not_offered"]["type"] == "UsageError"
    assert "offers YUYV" in guest["not_offered"]["message"]
    assert "not MJPG" in guest["not_offered"]["message"]
    assert guest["not_supported"]["type"] == "UsageError"
    assert "NV12 is not supported" in guest["not_supported"]["message"]


def test_a_camera_in_use_is_refused_naming_the_cause(guest):
    assert guest["busy"]["type"] == "CameraError"
    assert "in use by another program" in guest["busy"]["message"]


def test_stream_sends_v4l2_frames_end_to_end(guest):
    s = ok(guest, "stream")
    assert s["rc"] == 0, s["stderr"]
    doc = s["doc"]
    assert doc["complete"] and (doc["images"], doc["answered"], doc["duplicates"]) == (3, 3, 0)
    cam = doc["camera"]
    assert (cam["kind"], cam["card"], cam["format"], cam["width"], cam["height"]) == \
        ("v4l2", "vivid", "YUYV", 640, 480)
    assert "camera /dev/video0 (YUYV)" in s["stdout"]
    assert all(p["outputs"] and p["frame"] >= 0 for p in doc["predictions"])
