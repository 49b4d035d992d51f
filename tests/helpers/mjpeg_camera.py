"""A stand-in camera command: writes MJPEG frames to stdout at a frame rate, as
``rpicam-vid --codec mjpeg -o -`` does (a real process and a real pipe).

    python mjpeg_camera.py FPS FRAMES [--then sleep|exit|fail] [--no-dht] [--garbage]

Frame k is sample image k mod 6 (resized to 320x240), with k drawn into its first pixel
row (k's bits as black/white 8x1 blocks), so a test can read which frame it got.
"""

import argparse
import io
import sys
import time

from PIL import Image

from sc2deploy.camera import jpeg
from sc2deploy.preprocess import sample_images


def frame_bytes(k: int, no_dht: bool) -> bytes:
    img = Image.open(sample_images()[k % 6]).convert("RGB").resize((320, 240))
    for bit in range(16):
        value = 255 if k >> bit & 1 else 0
        for x in range(bit * 16, bit * 16 + 16):
            for y in range(16):
                img.putpixel((x, y), (value, value, value))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    data = out.getvalue()
    if no_dht:
        found, scan = jpeg.segments(data)
        data = data[:2] + b"".join(data[s:e] for m, s, e in found if m != jpeg.DHT) + data[scan:]
    return data


def frame_number(img) -> int:
    """The k drawn by frame_bytes (read back from the decoded, resized frame)."""
    gray = img.convert("L").resize((320, 240))
    return sum(1 << bit for bit in range(16) if gray.getpixel((bit * 16 + 8, 8)) > 127)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("fps", type=float)
    p.add_argument("frames", type=int)
    p.add_argument("--then", choices=("sleep", "exit", "fail"), default="exit")
    p.add_argument("--no-dht", action="store_true")
    p.add_argument("--garbage", action="store_true", help="noise and a cut frame in between")
    a = p.parse_args()
    cache = [frame_bytes(k, a.no_dht) for k in range(min(a.frames, 64))]
    out = sys.stdout.buffer
    start = time.monotonic()
    try:
        for k in range(a.frames):
            data = cache[k] if k < len(cache) else frame_bytes(k, a.no_dht)
            if a.garbage and k % 3 == 1:
                out.write(b"\x00noise\xff\x00" + cache[0][:500])
            out.write(data)
            out.flush()
            time.sleep(max(0.0, start + (k + 1) / a.fps - time.monotonic()))
    except BrokenPipeError:
        return 0
    if a.then == "sleep":
        time.sleep(3600)
    if a.then == "fail":
        print("camera: sensor timeout", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
