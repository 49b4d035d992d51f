"""MJPEG framing over a real pipe, and decoding frames that lack Huffman tables."""

import io
import os
import threading

import numpy as np
import pytest
from PIL import Image

from sc2deploy.camera import jpeg
from sc2deploy.errors import CameraEnded, CameraError


def jpeg_bytes(colour, size=(48, 32), **save) -> bytes:
    out = io.BytesIO()
    rng = np.random.default_rng(sum(colour))
    noise = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(noise // 2 + np.uint8(colour[0] // 2)).save(out, "JPEG", **save)
    return out.getvalue()


def with_thumbnail(data: bytes) -> bytes:
    """An APP1 segment holding a whole JPEG (FF D8 ... FF D9), as an EXIF thumbnail does."""
    thumb = jpeg_bytes((9, 9, 9), (8, 8))
    segment = b"\xff\xe1" + (len(thumb) + 2).to_bytes(2, "big") + thumb
    return data[:2] + segment + data[2:]


def strip_tables(data: bytes) -> bytes:
    found, scan = jpeg.segments(data)
    return data[:2] + b"".join(data[s:e] for m, s, e in found if m != jpeg.DHT) + data[scan:]


def split_all(payload: bytes, chunk: int, **kw):
    """Frames read back through a pipe fed by another thread, ``chunk`` bytes per read."""
    r, w = os.pipe()
    writer = threading.Thread(target=lambda: (os.write(w, payload), os.close(w)))
    writer.start()
    splitter = jpeg.FrameSplitter(r, chunk=chunk, **kw)
    frames = []
    with pytest.raises(CameraEnded, match="ended"):
        while True:
            frame = splitter.read(5.0)
            assert frame is not None, "no frame within 5 s"
            frames.append(frame)
    writer.join()
    os.close(r)
    return frames, splitter


@pytest.mark.parametrize("chunk", [1, 7, 1 << 16])
def test_frames_come_back_whole_whatever_the_reads(chunk):
    frames = [jpeg_bytes((c, c, c)) for c in (0, 90, 180)]
    got, splitter = split_all(b"".join(frames), chunk)
    assert got == frames
    assert (splitter.cut_frames, splitter.skipped_bytes) == (0, 0)


def test_a_thumbnail_restarts_and_stuffed_bytes_do_not_end_a_frame():
    restart = jpeg_bytes((40, 40, 40), (64, 64))
    # Pillow writes restart markers (FF D0..D7) inside the scan with restart_marker_blocks.
    restart = jpeg_bytes((40, 40, 40), (64, 64), restart_marker_blocks=1)
    assert any(restart.find(bytes([0xFF, m])) > 0 for m in range(0xD0, 0xD8))
    frames = [with_thumbnail(jpeg_bytes((1, 2, 3))), restart]
    assert frames[0].count(b"\xff\xd9") == 2  # the thumbnail's end comes first
    got, splitter = split_all(b"".join(frames), 5)
    assert got == frames and splitter.cut_frames == 0


def test_noise_cut_frames_and_oversized_frames_are_skipped_and_counted():
    a, b, c = (jpeg_bytes((k, k, k)) for k in (10, 100, 200))
    big = jpeg_bytes((5, 5, 5), (256, 256))
    payload = b"noise" + a + b[:300] + c + b"\xff\xff\x00" + big + b + a[:50]
    got, splitter = split_all(payload, 64, max_bytes=len(big) - 1)
    assert got == [a, c, b]
    assert splitter.cut_frames == 3  # b's head, the oversized frame, a's head at the end
    assert splitter.skipped_bytes == len(payload) - len(a) - len(b) - len(c)


def test_a_stalled_stream_times_out_without_losing_bytes():
    r, w = os.pipe()
    frame = jpeg_bytes((3, 3, 3))
    os.write(w, frame[:100])
    splitter = jpeg.FrameSplitter(r)
    assert splitter.read(0.05) is None
    os.write(w, frame[100:])
    assert splitter.read(0.05) == frame
    os.close(w)
    with pytest.raises(CameraEnded):
        splitter.read(1.0)
    os.close(r)


def test_frames_without_huffman_tables_decode_as_with_the_standard_ones():
    frame = jpeg_bytes((120, 60, 30), (64, 48), optimize=False)
    bare = strip_tables(frame)
    assert b"\xff\xc4" in frame and b"\xff\xc4" not in bare
    assert jpeg.with_huffman_tables(frame) == frame  # tables present: unchanged
    assert np.array_equal(np.asarray(jpeg.decode(bare)), np.asarray(jpeg.decode(frame)))
    assert jpeg.decode(bare).mode == "RGB"


def test_bad_frames_raise_camera_errors_that_say_what_came():
    with pytest.raises(CameraError, match="no JPEG .*starts with 00010203"):
        jpeg.decode(bytes(range(16)))
    with pytest.raises(CameraError, match="does not decode"):
        whole = jpeg_bytes((1, 1, 1))  # without its frame header (SOF0)
        found, scan = jpeg.segments(whole)
        jpeg.decode(whole[:2] + b"".join(whole[s:e] for m, s, e in found if m != 0xC0)
                    + whole[scan:])
    with pytest.raises(CameraError, match="without a scan"):
        jpeg.decode(b"\xff\xd8\xff\xe0\x00\x04ab\xff\xd9")
