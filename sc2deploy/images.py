"""Image files → RGB 8-bit Pillow images, decoded as the training loaders do (torch-free).

Training loaders call ``Image.open(f).convert("RGB")``; for 8-bit images this does the
same, so results match training: alpha is dropped (LA, RGBA, PA; transparent pixels keep
their colour), palettes are looked up, CMYK uses Pillow's conversion, "1" becomes 0/255.
Deeper data is scaled to 8 bits, never clipped:

    I;16, I;16B, I;16L, I  (16-bit gray)  v >> 8, the high byte (values outside 0..65535 clip)
    RGB 48-bit, RGBA 64-bit PNG           Pillow already decodes them to 8 bits, the high byte
    F  (32-bit float)                     round(255 * v), v in [0, 1] (outside clips, NaN -> 0)

The high byte is what Pillow keeps of 48/64-bit PNGs, so 16-bit gray and colour agree;
it is within 1 of round(v * 255 / 65535).

Pillow's decompression-bomb guard becomes a UsageError; the limit is Pillow's
``MAX_IMAGE_PIXELS`` (89,478,485) unless ``SC2DEPLOY_MAX_IMAGE_PIXELS`` is set.

``load_image(path, min_side=N)`` (the fast preprocessing) decodes a JPEG at 1/2, 1/4 or 1/8
of its size when the shorter side stays >= N (libjpeg's DCT-domain scaling, Pillow's
``draft``); other formats are decoded whole.
"""

import os
from pathlib import Path
from typing import Optional, Tuple

from sc2deploy.errors import UsageError

PIXELS_ENV = "SC2DEPLOY_MAX_IMAGE_PIXELS"
DRAFT_SCALES = (8, 4, 2, 1)  # libjpeg's DCT-domain scaling: 1/8, 1/4, 1/2, whole
# What Pillow raises on corrupt, truncated or unsupported files (plugins use SyntaxError).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError)


def load_image(path: Path, min_side: Optional[int] = None, whole_blocks: bool = False):
    """Decode an image file to an RGB 8-bit Pillow image (fully read, file closed).

    The EXIF orientation is not applied (it stays in ``info``, see
    ``Preprocessing.exif_transpose``); ``filename`` is set to ``path``. ``min_side``: decode
    a JPEG at the smallest DCT scale whose shorter side is still >= it (``whole_blocks``:
    only scales that divide both sides); ``full_size`` (the stored size) and ``draft_scale``
    (1, 2, 4 or 8) are set on the image.
    """
    from PIL import Image

    if not Path(path).is_file():
        raise UsageError(f"image not found: {path} (expected an image file)")
    limit = max_image_pixels(Image.MAX_IMAGE_PIXELS)
    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # checked here instead
    try:
        with Image.open(path) as img:
            _check_pixels(path, img.size, limit)
            full_size, scale = img.size, 1
            if min_side is not None and img.format == "JPEG":
                scale = draft_scale(img.size, min_side, whole_blocks)
                if scale > 1:  # request (w // s, h // s): Pillow then picks exactly s
                    img.draft(None, (img.size[0] // scale, img.size[1] // scale))
            rgb = to_rgb8(img)
    except _DECODE_ERRORS as exc:
        raise UsageError(f"cannot read image {path}: {exc} ({type(exc).__name__}); expected a "
                         "complete image file Pillow can decode: re-save or replace it") from None
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    rgb.filename = str(path)
    rgb.full_size, rgb.draft_scale = full_size, scale
    return rgb


def draft_scale(size: Tuple[int, int], min_side: int, whole_blocks: bool = False) -> int:
    """The largest libjpeg DCT scale (8, 4, 2 or 1) that keeps the shorter side of an image
    of ``size`` (w, h) >= ``min_side``; ``whole_blocks``: also dividing w and h exactly."""
    if not isinstance(min_side, int) or isinstance(min_side, bool) or min_side < 1:
        raise UsageError(f"min_side {min_side!r}: expected a positive integer number of pixels "
                         "(the resize target)")
    w, h = size
    for scale in DRAFT_SCALES:
        if min(w, h) // scale >= min_side and not (whole_blocks and (w % scale or h % scale)):
            return scale
    return 1


def to_rgb8(img):
    """Any Pillow image → RGB 8-bit: 16-bit and float data scaled, alpha dropped."""
    import numpy as np
    from PIL import Image

    mode = img.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        a = np.asarray(img)
        if mode == "F":
            a = np.round(np.clip(np.nan_to_num(a), 0.0, 1.0) * 255)
        else:
            a = np.clip(a, 0, 65535).astype(np.uint16) >> 8
        out = Image.fromarray(a.astype(np.uint8)).convert("RGB")
        out.info = dict(img.info)  # keeps EXIF
        return out
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # same colours as convert("RGB"), without Pillow's warning
    return img.convert("RGB")


def max_image_pixels(default):
    """The pixel limit: ``SC2DEPLOY_MAX_IMAGE_PIXELS`` if set, else ``default`` (None: none)."""
    value = os.environ.get(PIXELS_ENV, "").strip()
    if not value:
        return default
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit <= 0:
        raise UsageError(f"{PIXELS_ENV}={value!r} is invalid: expected a positive integer "
                         f"number of pixels, e.g. {PIXELS_ENV}=200000000, or unset it for "
                         f"Pillow's limit ({default or 'none'})")
    return limit


def _check_pixels(path: Path, size, limit) -> None:
    w, h = size
    if limit is not None and w * h > limit:
        raise UsageError(
            f"image {path} claims {w}x{h} = {w * h:,} pixels, more than the limit of "
            f"{limit:,} (Pillow's guard against decompression bombs); if you trust the file, "
            f"raise the limit: export {PIXELS_ENV}={w * h} (on the device too for remote runs)")
