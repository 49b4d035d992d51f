"""Baselines for reports: JPEG/WebP of the head's input image, and the BQ latent as bytes."""

import io
import zlib
from pathlib import Path
from typing import Dict

import numpy as np

from sc2deploy.errors import UsageError
from sc2deploy.preprocess import Preprocessing

IMAGE_FORMATS = {"jpeg": "JPEG", "webp": "WEBP"}


def image_bytes(path: Path, pre: Preprocessing, fmt: str, quality: int) -> bytes:
    """The resized/cropped input image compressed by Pillow at ``quality`` (1-100)."""
    return compress(pre.cropped_image(path), fmt, quality)


def compress(img, fmt: str, quality: int) -> bytes:
    """A Pillow RGB image compressed as ``fmt`` (jpeg, webp) at ``quality`` (1-100)."""
    if fmt not in IMAGE_FORMATS:
        raise UsageError(f"unknown image format {fmt!r}; known: {', '.join(IMAGE_FORMATS)}")
    if not 1 <= int(quality) <= 100:
        raise UsageError(f"quality {quality} is out of range: expected 1-100")
    buf = io.BytesIO()
    img.save(buf, format=IMAGE_FORMATS[fmt], quality=int(quality))
    return buf.getvalue()


def bq_bytes(symbols: np.ndarray, scale: float, zero_point: int) -> Dict[str, bytes]:
    """The BQ latent as raw uint8 and zlib-compressed, each after scale (f32) and zero point (u8)."""
    q = np.asarray(symbols)
    if q.size and (q.min() < 0 or q.max() > 255):
        raise UsageError("BQ symbols must lie in [0, 255]")
    head = np.float32(scale).tobytes() + np.uint8(zero_point).tobytes()
    raw = head + q.astype(np.uint8).tobytes()
    return {"raw": raw, "zlib": head + zlib.compress(q.astype(np.uint8).tobytes(), 9)}
