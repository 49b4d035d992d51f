"""Preprocessing: torchvision's eval transform arithmetic, reproduced with Pillow + numpy."""

import logging

import numpy as np
import pytest
from PIL import Image

from sc2deploy.errors import UsageError
from sc2deploy.images import load_image
from sc2deploy.log import logger
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


def test_manifest_records_exif_transpose_and_old_bundles_default_to_false():
    pre = Preprocessing(256, (224, 224), MEAN, STD)
    spec = pre.to_manifest()
    assert spec["exif_transpose"] is False
    assert Preprocessing.from_manifest(spec) == pre
    del spec["exif_transpose"]  # a bundle written before the option existed
    assert Preprocessing.from_manifest(spec).exif_transpose is False
    on = Preprocessing(256, (224, 224), MEAN, STD, exif_transpose=True)
    assert Preprocessing.from_manifest(on.to_manifest()) == on


def _oriented(path, orientation=6):
    """A 40x20 image, white top-left 20x10 block, stored with an EXIF Orientation tag."""
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:10, :20] = 255
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = orientation  # 6: the viewer rotates 90 degrees clockwise
    img.save(path, exif=exif)
    return arr


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_exif_orientation_ignored_by_default_applied_on_request(tmp_path, suffix):
    path = tmp_path / f"rotated.{suffix}"
    arr = _oriented(path)
    default = Preprocessing(20, (20, 20), MEAN, STD)
    honor = Preprocessing(20, (20, 20), MEAN, STD, exif_transpose=True)
    # Default (as training): stored pixels, 40x20 -> crop columns 10..30.
    # Opt-in: rotated to 20x40 -> crop rows 10..30.
    expected = {default: arr[:, 10:30], honor: np.rot90(arr, -1)[10:30, :]}
    for pre, want in expected.items():
        got = np.asarray(pre.cropped_image(path), np.float32)
        via_runtime = pre.transform(load_image(path))  # how profile calls it
        np.testing.assert_array_equal(via_runtime, pre(path))
        if suffix == "png":
            np.testing.assert_array_equal(got, want)
        quadrants = [got[:10, :10].mean(), got[:10, 10:].mean()]
        assert (np.argmax(quadrants), pre.exif_transpose) in ((0, False), (1, True))


def test_unreadable_exif_fails_only_when_honored(tmp_path):
    path = tmp_path / "bad-exif.jpg"
    Image.new("RGB", (32, 32)).save(path, exif=b"Exif\x00\x00garbage!")
    assert Preprocessing(32, (32, 32), MEAN, STD)(path).shape == (1, 3, 32, 32)
    with pytest.raises(UsageError, match="bad-exif.jpg has unreadable EXIF .*--exif-transpose"):
        Preprocessing(32, (32, 32), MEAN, STD, exif_transpose=True)(path)


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_small_image_is_upscaled_with_one_warning_per_file(tmp_path):
    path = tmp_path / "tiny.png"
    Image.new("RGB", (16, 12), (200, 100, 50)).save(path)
    pre = Preprocessing(32, (32, 32), MEAN, STD)
    records = _Records()
    logger.addHandler(records)
    try:
        for _ in range(3):
            x = pre(path)
            pre.transform(load_image(path))
    finally:
        logger.removeHandler(records)
    assert x.shape == (1, 3, 32, 32)
    assert records.messages == [f"image {path} is 16x12 px, smaller than the 32x32 crop: it is "
                                "upscaled (blurred) to 32 px on the shorter side"]


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
