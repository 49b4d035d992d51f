"""Baselines: JPEG/WebP of the head's input image, BQ latent as raw and zlib bytes."""

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from sc2deploy.measure.baselines import bq_bytes, image_bytes
from sc2deploy.errors import UsageError
from sc2deploy.preprocess import Preprocessing, sample_images

PRE = Preprocessing(256, (224, 224), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@pytest.mark.parametrize("fmt,magic", [("jpeg", b"\xff\xd8"), ("webp", b"RIFF")])
def test_image_baselines_encode_the_cropped_input(fmt, magic):
    path = sample_images()[0]
    low, high = image_bytes(path, PRE, fmt, 10), image_bytes(path, PRE, fmt, 90)
    assert low.startswith(magic) and len(low) < len(high)
    with Image.open(io.BytesIO(high)) as img:
        assert img.size == (224, 224)


def test_image_baseline_errors():
    with pytest.raises(UsageError, match="unknown image format 'png'"):
        image_bytes(sample_images()[0], PRE, "png", 50)
    with pytest.raises(UsageError, match="quality 0 is out of range"):
        image_bytes(sample_images()[0], PRE, "jpeg", 0)


def test_bq_bytes():
    q = np.arange(6 * 29 * 29).reshape(6, 29, 29) % 7
    out = bq_bytes(q, 0.125, 3)
    assert len(out["raw"]) == 5 + q.size
    assert zlib.decompress(out["zlib"][5:]) == q.astype(np.uint8).tobytes()
    assert len(out["zlib"]) < len(out["raw"])
    with pytest.raises(UsageError, match=r"\[0, 255\]"):
        bq_bytes(np.array([256]), 1.0, 0)
