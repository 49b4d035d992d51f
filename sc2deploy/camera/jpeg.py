"""Motion JPEG: split a byte stream into frames, and decode a frame (Pillow, torch-free).

A frame is found by walking its markers, not by searching for FF D9 (an EXIF thumbnail
holds one of its own)::

    FF D8 | FF xx len segment ... | FF DA len header, entropy-coded data (FF 00 stuffed,
    FF D0..D7 restarts) | ... more segments or scans ... | FF D9

Bytes that are no frame (noise, a cut frame, more than ``max_bytes``) are skipped up to the
next FF D8 and counted. Webcams often send MJPEG without Huffman tables (DHT), relying on
the standard ones of JPEG Annex K: those are put back before decoding.
"""

import io
import os
import select
from typing import Optional, Tuple

from sc2deploy.errors import CameraEnded, CameraError

SOI, EOI, SOS, DHT = 0xD8, 0xD9, 0xDA, 0xC4
_STANDALONE = {0x01, *range(0xD0, 0xD8)}
MAX_FRAME_BYTES = 16 << 20
_standard_tables: Optional[bytes] = None


class _Cut(Exception):
    """Not a frame: resynchronise from ``at``."""

    def __init__(self, at: int):
        self.at = at


def frame_end(buf, start: int) -> Optional[int]:
    """End (exclusive) of the frame whose FF D8 is at ``start``; None: ``buf`` ends first.

    Raises _Cut when the bytes cannot be one frame.
    """
    i, n = start + 2, len(buf)
    while True:
        if i + 2 > n:
            return None
        if buf[i] != 0xFF:
            raise _Cut(start + 2)
        marker = buf[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == EOI:
            return i + 2
        if marker == SOI:
            raise _Cut(i)
        if marker in _STANDALONE:
            i += 2
            continue
        if i + 4 > n:
            return None
        length = buf[i + 2] << 8 | buf[i + 3]
        if length < 2:
            raise _Cut(start + 2)
        i += 2 + length
        if marker == SOS:
            i = _scan_end(buf, i)
            if i is None:
                return None


def _scan_end(buf, i: int) -> Optional[int]:
    """Where the entropy-coded data from ``i`` ends (at the next real marker)."""
    n = len(buf)
    while True:
        i = buf.find(b"\xff", i)
        if i < 0 or i + 1 >= n:
            return None
        nxt = buf[i + 1]
        if nxt == 0x00 or 0xD0 <= nxt <= 0xD7:
            i += 2
        elif nxt == 0xFF:
            i += 1
        else:
            return i


class FrameSplitter:
    """Reads MJPEG frames from a file descriptor (a pipe: a camera command's stdout)."""

    def __init__(self, fd: int, max_bytes: int = MAX_FRAME_BYTES, chunk: int = 1 << 16):
        self.fd, self.max_bytes, self.chunk = fd, max_bytes, chunk
        self.buf = bytearray()
        self.eof = False
        self.skipped_bytes = 0  # bytes that were not part of a frame
        self.cut_frames = 0  # frames dropped as cut, malformed or too large

    def read(self, timeout_s: Optional[float] = None) -> Optional[bytes]:
        """The next whole frame; None if none completed within ``timeout_s``.

        Raises CameraEnded once the stream has ended (a cut last frame is counted).
        """
        while True:
            frame = self._take()
            if frame is not None:
                return frame
            if self.eof:
                if self.buf:
                    self.cut_frames += self.buf.startswith(b"\xff\xd8")
                    self._drop(len(self.buf))
                raise CameraEnded("the MJPEG stream ended")
            if timeout_s is not None and not select.select([self.fd], [], [], timeout_s)[0]:
                return None
            data = os.read(self.fd, self.chunk)
            if data:
                self.buf += data
            else:
                self.eof = True

    def _take(self) -> Optional[bytes]:
        buf = self.buf
        while True:
            start = buf.find(b"\xff\xd8")
            if start < 0:
                keep = 1 if buf.endswith(b"\xff") else 0
                self._drop(len(buf) - keep)
                return None
            self._drop(start)
            try:
                end = frame_end(buf, 0)
            except _Cut as cut:
                self.cut_frames += 1
                self._drop(cut.at)
                continue
            if end is None:
                if len(buf) > self.max_bytes:
                    self.cut_frames += 1
                    self._drop(2)
                    continue
                return None
            if end > self.max_bytes:
                self.cut_frames += 1
                self._drop(end)
                continue
            frame = bytes(buf[:end])
            del buf[:end]
            return frame

    def _drop(self, count: int) -> None:
        if count > 0:
            self.skipped_bytes += count
            del self.buf[:count]


def segments(data: bytes) -> Tuple[list, int]:
    """The (marker, start, end) segments before the first scan, and where the scan starts."""
    found, i = [], 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        end = i + 2 + (data[i + 2] << 8 | data[i + 3])
        if marker == SOS:
            return found, i
        found.append((marker, i, end))
        i = end
    raise CameraError("a JPEG frame without a scan (no FF DA before its end): not an image")


def standard_tables() -> bytes:
    """The DHT segments of JPEG Annex K, as libjpeg writes them when not optimizing."""
    global _standard_tables
    if _standard_tables is None:
        from PIL import Image

        out = io.BytesIO()
        Image.new("RGB", (16, 16)).save(out, "JPEG", optimize=False)
        data = out.getvalue()
        found, _ = segments(data)
        _standard_tables = b"".join(data[s:e] for m, s, e in found if m == DHT)
    return _standard_tables


def with_huffman_tables(data: bytes) -> bytes:
    """``data``, with the standard Huffman tables inserted before the scan if it has none."""
    found, scan = segments(data)
    if any(m == DHT for m, _, _ in found):
        return data
    return data[:scan] + standard_tables() + data[scan:]


def decode(data: bytes):
    """One MJPEG frame → an RGB Pillow image; CameraError if it does not decode."""
    from PIL import Image

    from sc2deploy.images import to_rgb8

    if not data.startswith(b"\xff\xd8"):
        raise CameraError(f"a frame of {len(data)} bytes that is no JPEG (starts with "
                          f"{data[:4].hex()}, expected ffd8)")
    try:
        with Image.open(io.BytesIO(with_huffman_tables(data))) as img:
            img.load()
            return to_rgb8(img)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CameraError(f"a JPEG frame of {len(data)} bytes does not decode: {exc}") from None
