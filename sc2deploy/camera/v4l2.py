"""A V4L2 capture device (/dev/videoN: USB webcams, the Pi's and Jetson's V4L2 nodes), by ioctl.

Stdlib only (fcntl, mmap, select; layouts in :mod:`v4l2_abi`)::

    open ─ QUERYCAP (capture + streaming?) ─ ENUM_FMT ─ S_FMT (size, format) ─ REQBUFS (mmap)
         ─ QUERYBUF + mmap + QBUF each ─ STREAMON ─ [select, DQBUF, copy, QBUF]* ─ STREAMOFF

Cameras behind libcamera (Raspberry Pi CSI modules) or Argus (Jetson CSI) deliver raw
sensor data here; give their own tool as a camera command instead (``--camera-command``).
"""

import ctypes
import errno
import fcntl
import glob
import mmap
import os
import select
from typing import List, Optional, Tuple

from sc2deploy.camera import pixels
from sc2deploy.camera import v4l2_abi as abi
from sc2deploy.errors import CameraError, UsageError


def video_devices() -> List[str]:
    return sorted(glob.glob("/dev/video*"))


def _ioctl(fd: int, request: int, arg, what: str) -> None:
    try:
        fcntl.ioctl(fd, request, arg)
    except OSError as exc:
        busy = "; the camera is in use by another program (`fuser -v /dev/video*` names " \
            "it): stop it and try again" if exc.errno == errno.EBUSY else ""
        raise CameraError(f"{what} failed: {os.strerror(exc.errno)} (errno {exc.errno})"
                          f"{busy}") from None


class V4L2Camera:
    """Streaming capture with ``buffers`` mmap buffers; :meth:`read` returns one frame's bytes."""

    def __init__(self, path: str, size: Optional[Tuple[int, int]] = None,
                 pixelformat: Optional[str] = None, buffers: int = 4):
        self.path = path
        self.fd = self._open(path)
        self.maps: List[mmap.mmap] = []
        self.streaming = False
        try:
            self.card = self._check_capabilities()
            self.offered = self._formats()
            self.pixelformat = self._choose(pixelformat)
            self.width, self.height, self.bytesperline = self._set_format(size)
            self._start(buffers)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _open(path: str) -> int:
        try:
            return os.open(path, os.O_RDWR | os.O_NONBLOCK)
        except FileNotFoundError:
            present = ", ".join(video_devices()) or "none"
            raise UsageError(f"camera {path} not found (video devices here: {present})") from None
        except PermissionError:
            raise UsageError(f"no permission to open {path}: add the user to the group that "
                             f"owns it (usually `video`: sudo usermod -aG video $USER) or run "
                             "as root") from None
        except OSError as exc:
            raise CameraError(f"cannot open camera {path}: {exc.strerror}") from None

    def _check_capabilities(self) -> str:
        cap = abi.Capability()
        try:
            fcntl.ioctl(self.fd, abi.VIDIOC_QUERYCAP, cap)
        except OSError as exc:
            if exc.errno in (errno.ENOTTY, errno.EINVAL):
                raise UsageError(f"{self.path} is not a V4L2 device (VIDIOC_QUERYCAP: "
                                 f"{os.strerror(exc.errno)})") from None
            raise CameraError(f"VIDIOC_QUERYCAP on {self.path} failed: "
                              f"{os.strerror(exc.errno)}") from None
        caps = cap.device_caps if cap.capabilities & abi.CAP_DEVICE_CAPS else cap.capabilities
        card = cap.card.decode("utf-8", "replace")
        if not caps & abi.CAP_VIDEO_CAPTURE:
            raise UsageError(f"{self.path} ({card}) is not a video capture node (a metadata or "
                             "output node?); try the other /dev/video* of the same camera")
        if not caps & abi.CAP_STREAMING:
            raise CameraError(f"{self.path} ({card}) does not support streaming I/O (mmap)")
        return card

    def _formats(self) -> List[str]:
        found = []
        for index in range(1024):  # until EINVAL; vivid alone offers 66
            desc = abi.FmtDesc(index=index, type=abi.BUF_TYPE_VIDEO_CAPTURE)
            try:
                fcntl.ioctl(self.fd, abi.VIDIOC_ENUM_FMT, desc)
            except OSError:
                break
            found.append(abi.fourcc_name(desc.pixelformat))
        return found

    def _choose(self, wanted: Optional[str]) -> str:
        if wanted is not None:
            if wanted not in self.offered:
                raise UsageError(f"{self.path} ({self.card}) offers {', '.join(self.offered)}; "
                                 f"not {wanted}")
            if wanted not in pixels.DECODERS:
                raise UsageError(f"pixel format {wanted} is not supported; supported: "
                                 f"{', '.join(pixels.PREFERENCE)}")
            return wanted
        for name in pixels.PREFERENCE:
            if name in self.offered:
                return name
        raise CameraError(f"{self.path} ({self.card}) offers {', '.join(self.offered) or 'no'} "
                          f"formats, none of {', '.join(pixels.PREFERENCE)}; give its own "
                          "capture tool as --camera-command")

    def _set_format(self, size: Optional[Tuple[int, int]]) -> Tuple[int, int, int]:
        fmt = abi.Format(type=abi.BUF_TYPE_VIDEO_CAPTURE)
        _ioctl(self.fd, abi.VIDIOC_G_FMT, fmt, f"VIDIOC_G_FMT on {self.path}")
        if size is not None:
            fmt.fmt.pix.width, fmt.fmt.pix.height = size
        fmt.fmt.pix.pixelformat = abi.fourcc(self.pixelformat)
        fmt.fmt.pix.field = abi.FIELD_ANY
        fmt.fmt.pix.bytesperline = fmt.fmt.pix.sizeimage = 0  # the driver's own for this format
        _ioctl(self.fd, abi.VIDIOC_S_FMT, fmt, f"VIDIOC_S_FMT on {self.path}")
        got = abi.fourcc_name(fmt.fmt.pix.pixelformat)
        if got != self.pixelformat:
            raise CameraError(f"{self.path} was asked for {self.pixelformat} and set {got}")
        return fmt.fmt.pix.width, fmt.fmt.pix.height, fmt.fmt.pix.bytesperline

    def _start(self, count: int) -> None:
        req = abi.RequestBuffers(count=count, type=abi.BUF_TYPE_VIDEO_CAPTURE,
                                 memory=abi.MEMORY_MMAP)
        _ioctl(self.fd, abi.VIDIOC_REQBUFS, req, f"VIDIOC_REQBUFS on {self.path}")
        if req.count < 1:
            raise CameraError(f"{self.path} granted no capture buffers")
        for index in range(req.count):
            buf = self._buffer(index)
            _ioctl(self.fd, abi.VIDIOC_QUERYBUF, buf, "VIDIOC_QUERYBUF")
            self.maps.append(mmap.mmap(self.fd, buf.length, mmap.MAP_SHARED,
                                       mmap.PROT_READ | mmap.PROT_WRITE, offset=buf.m.offset))
            _ioctl(self.fd, abi.VIDIOC_QBUF, buf, "VIDIOC_QBUF")
        _ioctl(self.fd, abi.VIDIOC_STREAMON, ctypes.c_int(abi.BUF_TYPE_VIDEO_CAPTURE),
               f"VIDIOC_STREAMON on {self.path}")
        self.streaming = True

    @staticmethod
    def _buffer(index: int = 0) -> abi.Buffer:
        return abi.Buffer(index=index, type=abi.BUF_TYPE_VIDEO_CAPTURE, memory=abi.MEMORY_MMAP)

    def read(self, timeout_s: float) -> Optional[bytes]:
        """One frame's bytes; None when no frame came within ``timeout_s``."""
        while True:
            ready, _, _ = select.select([self.fd], [], [], timeout_s)
            if not ready:
                return None
            buf = self._buffer()
            try:
                fcntl.ioctl(self.fd, abi.VIDIOC_DQBUF, buf)
            except OSError as exc:
                if exc.errno == errno.EAGAIN:
                    continue
                raise CameraError(f"VIDIOC_DQBUF on {self.path} failed: "
                                  f"{os.strerror(exc.errno)} (unplugged?)") from None
            data = None if buf.flags & abi.BUF_FLAG_ERROR else \
                bytes(self.maps[buf.index][:buf.bytesused])
            _ioctl(self.fd, abi.VIDIOC_QBUF, buf, "VIDIOC_QBUF")
            if data:
                return data

    cut_frames = 0  # whole buffers only: nothing is cut

    def decode(self, data: bytes):
        return pixels.decode(self.pixelformat, data, self.width, self.height, self.bytesperline)

    def describe(self) -> dict:
        return {"source": self.path, "kind": "v4l2", "card": self.card,
                "format": self.pixelformat, "width": self.width, "height": self.height}

    def __enter__(self) -> "V4L2Camera":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.fd is None:
            return
        if self.streaming:
            try:
                fcntl.ioctl(self.fd, abi.VIDIOC_STREAMOFF,
                            ctypes.c_int(abi.BUF_TYPE_VIDEO_CAPTURE))
            except OSError:
                pass
        for m in self.maps:
            m.close()
        self.maps.clear()
        os.close(self.fd)
        self.fd = None
