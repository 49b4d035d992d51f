"""Raw V4L2 frames → RGB 8-bit Pillow images, in integer arithmetic (the same bytes on every CPU).

YUYV (YUV 4:2:2, Y0 U Y1 V) is converted as BT.601 limited range with 8-bit fixed-point
coefficients, C = Y − 16, D = U − 128, E = V − 128::

    R = clip((298 C + 409 E + 128) >> 8)
    G = clip((298 C − 100 D − 208 E + 128) >> 8)
    B = clip((298 C + 516 D + 128) >> 8)

Rows may be padded (``bytesperline`` > width × bytes per pixel); the padding is dropped.
"""

from typing import Callable, Dict

from sc2deploy.camera import jpeg
from sc2deploy.errors import CameraError

BYTES_PER_PIXEL = {"YUYV": 2, "RGB3": 3, "GREY": 1}


def _rows(data: bytes, width: int, height: int, bytesperline: int, bpp: int):
    import numpy as np

    stride = bytesperline or width * bpp
    if stride < width * bpp or len(data) < stride * (height - 1) + width * bpp:
        raise CameraError(f"a frame of {len(data)} bytes is too short for {width}x{height} "
                          f"at {bpp} bytes per pixel and {stride} bytes per row")
    padded = np.frombuffer(data, np.uint8, count=min(len(data), stride * height))
    if padded.size < stride * height:  # the last row's padding may be missing
        padded = np.concatenate([padded, np.zeros(stride * height - padded.size, np.uint8)])
    return padded.reshape(height, stride)[:, :width * bpp]


def yuyv_to_rgb(data: bytes, width: int, height: int, bytesperline: int = 0):
    """YUYV bytes → an [H, W, 3] uint8 array (see the module docstring)."""
    import numpy as np

    if width % 2:
        raise CameraError(f"YUYV frames have an even width; got {width}")
    pairs = _rows(data, width, height, bytesperline, 2).reshape(height, width // 2, 4)
    pairs = pairs.astype(np.int32)
    y = np.stack([pairs[..., 0], pairs[..., 2]], axis=-1).reshape(height, width) - 16
    d = np.repeat(pairs[..., 1] - 128, 2, axis=1)
    e = np.repeat(pairs[..., 3] - 128, 2, axis=1)
    c = 298 * y + 128
    rgb = np.stack([c + 409 * e, c - 100 * d - 208 * e, c + 516 * d], axis=-1) >> 8
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _yuyv(data, width, height, bytesperline):
    from PIL import Image

    return Image.fromarray(yuyv_to_rgb(data, width, height, bytesperline), "RGB")


def _rgb24(data, width, height, bytesperline):
    from PIL import Image

    rows = _rows(data, width, height, bytesperline, 3)
    return Image.fromarray(rows.reshape(height, width, 3).copy(), "RGB")


def _grey(data, width, height, bytesperline):
    from PIL import Image

    return Image.fromarray(_rows(data, width, height, bytesperline, 1).copy(), "L").convert("RGB")


def _mjpeg(data, width, height, bytesperline):
    return jpeg.decode(data)


DECODERS: Dict[str, Callable] = {"MJPG": _mjpeg, "JPEG": _mjpeg, "YUYV": _yuyv,
                                 "RGB3": _rgb24, "GREY": _grey}
PREFERENCE = ("MJPG", "JPEG", "YUYV", "RGB3", "GREY")  # compressed first: less to copy over USB


def decode(pixelformat: str, data: bytes, width: int, height: int, bytesperline: int = 0):
    """A frame of ``pixelformat`` (a fourcc name) → an RGB Pillow image."""
    if pixelformat not in DECODERS:
        raise CameraError(f"pixel format {pixelformat!r} is not supported; supported: "
                          f"{', '.join(PREFERENCE)}")
    return DECODERS[pixelformat](data, width, height, bytesperline)
