"""Preprocessing: torchvision's eval transform arithmetic, reproduced with Pillow + numpy."""

import numpy as np
import pytest
from PIL import Image

from sc2deploy.errors import UsageError
from sc2deploy.preprocess import Preprocessing, list_images, sample_images

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def test_resize_short_side_then_center_crop(tmp_path):
    arr = np.zeros((300, 400, 3), dtype=np.uint8)
    arr[:, :, 0] = np.arange(400)[None, :] % 256
    arr[:, :, 1] = np.arange(300)[:, None] % 256
    path = tmp_path / "img.png"
    Image.fromarray(arr).save(path)
    pre = Preprocessing(resize=150, crop=(100, 100), mean=MEAN, std=STD)
    x = pre(path)
    assert x.shape == (1, 3, 100, 100) and x.dtype == np.float32
    # The same steps written out with Pillow: 400x300 -> 200x150, crop at (50, 25).
    ref = Image.fromarray(arr).resize((200, 150), Image.BILINEAR).crop((50, 25, 150, 125))
    expected = (np.asarray(ref, np.float32) / np.float32(255) - np.float32(MEAN)) / np.float32(STD)
    np.testing.assert_array_equal(x[0], expected.transpose(2, 0, 1))


def test_grayscale_and_rgba_become_rgb(tmp_path):
    for mode in ("L", "RGBA"):
        path = tmp_path / f"{mode}.png"
        Image.new(mode, (64, 64)).save(path)
        assert Preprocessing(32, (32, 32), MEAN, STD)(path).shape == (1, 3, 32, 32)


def test_errors(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(UsageError, match="cannot read image"):
        Preprocessing(32, (32, 32), MEAN, STD)(bad)
    with pytest.raises(UsageError, match="no images"):
        list_images(tmp_path / "..")
    with pytest.raises(UsageError, match="not found"):
        list_images(tmp_path / "absent")


def test_samples_are_shipped_with_licenses():
    images = sample_images()
    assert 16 <= len(images) <= 64
    assert sum(p.stat().st_size for p in images) <= 5 * 2 ** 20
    licenses = (images[0].parent / "LICENSES.md").read_text()
    assert all(p.name in licenses for p in images)
