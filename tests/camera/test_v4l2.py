"""The V4L2 device: ctypes layouts against <linux/videodev2.h> (x86_64 here, aarch64 under
qemu), refusals of what is no camera, and a real capture where a camera is present."""

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sc2deploy.camera import v4l2_abi
from sc2deploy.camera.source import open_camera
from sc2deploy.camera.v4l2 import V4L2Camera, video_devices
from sc2deploy.errors import UsageError

HEADER = "linux/videodev2.h"
ABI_FILE = Path(v4l2_abi.__file__)
CPU = "cortex-a76"


def c_program() -> str:
    """A C program printing layout()'s JSON, from the kernel header."""
    layout = v4l2_abi.layout()
    parts = []
    for name in layout["ioctl"]:
        parts.append(f'printf("\\"{name}\\": %lu", (unsigned long){name});')
    ioctls = ' printf(", "); '.join(parts)
    sizes = ' printf(", "); '.join(
        f'printf("\\"{s}\\": %zu", sizeof(struct {s}));' for s in layout["sizeof"])
    offsets = ' printf(", "); '.join(
        f'printf("\\"{k}\\": %zu", offsetof(struct {k.split(".")[0]}, {k.split(".")[1]}));'
        for k in layout["offsetof"])
    return (f"#include <stdio.h>\n#include <stddef.h>\n#include <{HEADER}>\n"
            "int main(void) {\n"
            f' printf("{{\\"ioctl\\": {{"); {ioctls} printf("}}, ");\n'
            f' printf("\\"offsetof\\": {{"); {offsets} printf("}}, ");\n'
            f' printf("\\"sizeof\\": {{"); {sizes} printf("}}}}\\n");\n'
            " return 0;\n}\n")


def compile_and_run(tmp_path: Path, compiler: str, runner=()) -> dict:
    source = tmp_path / "abi.c"
    source.write_text(c_program())
    binary = tmp_path / f"abi-{compiler}"
    subprocess.run([compiler, "-static", "-O0", str(source), "-o", str(binary)], check=True,
                   capture_output=True, text=True)
    out = subprocess.run([*runner, str(binary)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def needs(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        reason = f"needs {', '.join(missing)} (.ci/run installs them)"
        print("skipped:", reason)
        pytest.skip(reason)


def test_layouts_and_ioctl_numbers_match_the_kernel_header(tmp_path):
    needs("gcc")
    if not Path("/usr/include", HEADER).is_file():
        pytest.skip(f"/usr/include/{HEADER} missing (Debian's linux-libc-dev)")
    assert compile_and_run(tmp_path, "gcc") == json.loads(json.dumps(v4l2_abi.layout()))


def test_layouts_match_on_aarch64_under_qemu(tmp_path):
    """The header compiled for aarch64 vs ctypes in an aarch64 Python, both under qemu-user."""
    needs("qemu-aarch64-static", "aarch64-linux-gnu-gcc")
    from sc2deploy.orchestrate.emulation import verify as ve
    from sc2deploy.orchestrate.emulation.emulator import Emulator

    header = compile_and_run(tmp_path, "aarch64-linux-gnu-gcc", ["qemu-aarch64-static"])
    emu = Emulator(ve.DEFAULT_WORK, [CPU])
    emu.setup()
    proc = emu.run_python(CPU, [ABI_FILE], timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == header
    assert header["sizeof"]["v4l2_buffer"] == 88 and header["sizeof"]["v4l2_format"] == 208


def test_what_is_no_camera_is_refused_with_what_to_do(tmp_path):
    with pytest.raises(UsageError, match=r"/dev/video-none not found \(video devices here: "):
        V4L2Camera("/dev/video-none")
    with pytest.raises(UsageError, match="/dev/null is not a V4L2 device"):
        V4L2Camera("/dev/null")
    plain = tmp_path / "frames.mjpeg"
    plain.write_bytes(b"\xff\xd8")
    with pytest.raises(UsageError, match="is not a V4L2 device"):
        open_camera(str(plain))
    with pytest.raises(UsageError, match="expected a V4L2 device such as /dev/video0"):
        open_camera("video0")
    with pytest.raises(UsageError, match="give one camera"):
        open_camera()
    with pytest.raises(UsageError, match="are for V4L2 devices"):
        open_camera("-", size=(640, 480))


def capture_devices():
    found = []
    for path in video_devices():
        try:
            fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            cap = v4l2_abi.Capability()
            fcntl.ioctl(fd, v4l2_abi.VIDIOC_QUERYCAP, cap)
            caps = cap.device_caps if cap.capabilities & v4l2_abi.CAP_DEVICE_CAPS \
                else cap.capabilities
            if caps & v4l2_abi.CAP_VIDEO_CAPTURE and caps & v4l2_abi.CAP_STREAMING:
                found.append(path)
        except OSError:
            pass
        finally:
            os.close(fd)
    return found


def test_a_present_camera_gives_fresh_decodable_frames():
    devices = capture_devices()
    if not devices:
        reason = "no V4L2 capture device here (/dev/video*): the hardware path is not run"
        print("skipped:", reason, file=sys.stderr)
        pytest.skip(reason)
    with open_camera(devices[0], stall_s=10) as capture:
        frames = [capture.next() for _ in range(3)]
        images = [capture.decode(f.data) for f in frames]
        summary = capture.summary()
    assert [f.sequence for f in frames] == sorted({f.sequence for f in frames})
    assert all(im.mode == "RGB" and im.size == (summary["width"], summary["height"])
               for im in images)
