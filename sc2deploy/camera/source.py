"""Camera sources and the capture thread that keeps only the newest frame.

A camera runs at its own rate (e.g. 30 frames/s); the link sends one image every few
seconds. The capture thread reads every frame as it comes and keeps the newest, so what is
encoded is fresh (its age is measured) and the frames in between are counted as skipped::

    camera ──▶ capture thread: newest raw frame (older one: skipped) ──▶ next() ──▶ decode
"""

import os
import shlex
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

from sc2deploy.camera import jpeg
from sc2deploy.errors import CameraEnded, CameraError, UsageError

READ_TIMEOUT_S = 0.2  # how often the capture thread checks whether it should stop


@dataclass(frozen=True)
class Frame:
    sequence: int  # 0, 1, ... in capture order (skipped frames included)
    captured_ns: int  # time.monotonic_ns() when the frame's last byte was read
    data: bytes  # as the camera sent it (decode with the source's decode())


class CommandCamera:
    """MJPEG frames from a command's stdout (``rpicam-vid --codec mjpeg -o -``) or stdin."""

    def __init__(self, command: Optional[str]):
        self.command = command
        self.proc = None
        self._stderr = None
        if command is None:
            fd = 0
        else:
            argv = shlex.split(command)
            if not argv:
                raise UsageError("--camera-command is empty: give the command that writes "
                                 "MJPEG to its stdout, e.g. 'rpicam-vid -t 0 --codec mjpeg -o -'")
            self._stderr = tempfile.TemporaryFile()
            try:
                self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                             stdout=subprocess.PIPE, stderr=self._stderr)
            except OSError as exc:
                self._stderr.close()
                raise UsageError(f"cannot start the camera command {argv[0]!r}: "
                                 f"{exc.strerror}") from None
            fd = self.proc.stdout.fileno()
        self.splitter = jpeg.FrameSplitter(fd)

    def read(self, timeout_s: float) -> Optional[bytes]:
        try:
            return self.splitter.read(timeout_s)
        except CameraEnded:
            raise CameraEnded(self._ended()) from None

    def _ended(self) -> str:
        if self.proc is None:
            return "the MJPEG stream on stdin ended"
        code = self.proc.wait()
        self._stderr.seek(0)
        tail = self._stderr.read()[-1500:].decode("utf-8", "replace").strip()
        said = f"; it said: {tail}" if tail else ""
        return f"the camera command exited with code {code}{said}"

    @property
    def cut_frames(self) -> int:
        return self.splitter.cut_frames

    def decode(self, data: bytes):
        return jpeg.decode(data)

    def describe(self) -> dict:
        return {"source": self.command or "-", "kind": "command" if self.command else "stdin",
                "format": "MJPG"}

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc.stdout.close()
            self._stderr.close()
            self.proc = None


class Capture:
    """Runs ``camera.read`` on a thread; :meth:`next` hands out the newest unseen frame."""

    def __init__(self, camera, stall_s: float = 10.0):
        self.camera, self.stall_s = camera, stall_s
        self.decode: Callable = camera.decode
        self.captured = self.skipped = self.taken = 0
        self._latest: Optional[Frame] = None
        self._ended: Optional[BaseException] = None
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="camera", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                data = self.camera.read(READ_TIMEOUT_S)
                if data is None:
                    continue
                now = time.monotonic_ns()
                with self._cond:
                    if self._latest is not None:
                        self.skipped += 1
                    self._latest = Frame(self.captured, now, data)
                    self.captured += 1
                    self._cond.notify_all()
        except BaseException as exc:  # reported by next(); the thread ends here
            with self._cond:
                self._ended = exc
                self._cond.notify_all()

    def next(self) -> Frame:
        """The newest frame not handed out yet; waits up to ``stall_s`` for one."""
        deadline = time.monotonic() + self.stall_s
        with self._cond:
            while self._latest is None:
                if self._ended is not None:
                    if isinstance(self._ended, CameraError):
                        raise self._ended
                    raise CameraError(f"the camera failed: {self._ended!r}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CameraError(f"the camera sent no frame for {self.stall_s:g} s "
                                      f"({self.camera.describe()['source']})")
                self._cond.wait(left)
            frame, self._latest = self._latest, None
            self.taken += 1
            return frame

    def summary(self) -> dict:
        with self._cond:
            ended = str(self._ended) if isinstance(self._ended, CameraEnded) else None
            counts = {"captured": self.captured, "skipped": self.skipped, "taken": self.taken}
        return {**self.camera.describe(), "frames": counts, "cut_frames": self.camera.cut_frames,
                "ended": ended}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5 * READ_TIMEOUT_S + 5)  # a read returns within READ_TIMEOUT_S
        self.camera.close()

    def __enter__(self) -> "Capture":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_camera(source: Optional[str] = None, command: Optional[str] = None,
                size=None, pixelformat: Optional[str] = None, stall_s: float = 10.0) -> Capture:
    """A running capture: ``source`` a V4L2 device path or "-" (MJPEG on stdin), or a
    ``command`` that writes MJPEG to its stdout."""
    if (source is None) == (command is None):
        raise UsageError("give one camera: a V4L2 device (--camera /dev/video0), '-' for MJPEG "
                         "on stdin, or --camera-command CMD")
    if command is not None or source == "-":
        if size is not None or pixelformat is not None:
            raise UsageError("--camera-size and --camera-format are for V4L2 devices; set the "
                             "size in the camera command itself")
        return Capture(CommandCamera(command), stall_s)
    if not source.startswith("/dev/") and not os.path.exists(source):
        raise UsageError(f"--camera {source!r}: expected a V4L2 device such as /dev/video0, or "
                         "'-' for MJPEG on stdin")
    from sc2deploy.camera.v4l2 import V4L2Camera

    return Capture(V4L2Camera(source, size, pixelformat), stall_s)
