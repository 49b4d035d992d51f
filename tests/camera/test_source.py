"""The capture thread with a real camera command (tests/helpers/mjpeg_camera.py on a pipe)."""

import sys
import time

import pytest

from sc2deploy.camera.source import open_camera
from sc2deploy.errors import CameraEnded, CameraError, UsageError
from tests.helpers import mjpeg_camera
from tests.helpers.mjpeg_camera import frame_number

CAMERA = f"{sys.executable} {mjpeg_camera.__file__}"


def test_the_newest_frame_is_handed_out_and_the_rest_counted_as_skipped():
    with open_camera(command=f"{CAMERA} 50 10000 --no-dht") as capture:
        taken = []
        for _ in range(5):
            frame = capture.next()
            taken.append((frame, frame_number(capture.decode(frame.data))))
            time.sleep(0.2)  # a slow link: ~10 frames come meanwhile
        summary = capture.summary()
    sequences = [f.sequence for f, _ in taken]
    assert [n for _, n in taken] == sequences  # the image is the frame the sequence says
    assert sequences == sorted(set(sequences)) and sequences[-1] >= 12, sequences
    frames = summary["frames"]
    assert frames["taken"] == 5 and frames["skipped"] >= sequences[-1] - 4
    assert frames["captured"] >= frames["taken"] + frames["skipped"]
    assert summary["kind"] == "command" and summary["format"] == "MJPG"


def test_a_camera_command_that_exits_ends_the_capture_with_what_it_said():
    with open_camera(command=f"{CAMERA} 100 2 --then fail") as capture:
        got = []
        with pytest.raises(CameraEnded, match="exited with code 3; it said: camera: sensor "
                                              "timeout"):
            while True:
                got.append(capture.next().sequence)
                time.sleep(0.1)  # both frames are in before the first is taken
        assert got[-1] == 1 and capture.summary()["ended"].startswith("the camera command")


def test_a_stalled_camera_is_an_error_and_close_stops_its_command():
    # the first frame waits for Python to start the camera; the stall is timed after it
    capture = open_camera(command=f"{CAMERA} 100 1 --then sleep", stall_s=60)
    proc = capture.camera.proc
    try:
        capture.next()
        capture.stall_s = 0.5
        with pytest.raises(CameraError, match="sent no frame for 0.5 s"):
            capture.next()
    finally:
        capture.close()
    assert proc.poll() is not None  # terminated, not left running


def test_commands_that_cannot_run_are_refused():
    with pytest.raises(UsageError, match="cannot start the camera command 'no-such-camera-tool'"):
        open_camera(command="no-such-camera-tool --codec mjpeg")
    with pytest.raises(UsageError, match="--camera-command is empty"):
        open_camera(command="  ")


def test_cut_frames_and_noise_between_frames_are_survived_and_counted():
    with open_camera(command=f"{CAMERA} 200 7 --garbage --then sleep") as capture:
        numbers = []
        while len(numbers) < 7:
            frame = capture.next()
            numbers.append(frame_number(capture.decode(frame.data)))
            if frame.sequence == 6:
                break
        summary = capture.summary()
    assert numbers[-1] == 6 and summary["cut_frames"] == 2  # frames 1 and 4 had a cut one before
