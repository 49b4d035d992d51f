"""Preprocessing: torchvision's eval transform arithmetic, reproduced with Pillow + numpy."""

import logging

import numpy as np
import pytest
from PIL import Image

from sc2deploy.errors import UsageError
from sc2deploy.images import load_image
from sc2deploy.log import logger
from sc2deploy.images import draft_scale
from sc2deploy.preprocess import (FastPreprocessing, Preprocessing, list_images, preprocessor,
                                  sample_images)

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


# ---------------------------------------------------------------- fast preprocessing

def _levels(a, b, std=STD):
    """|a - b| of two normalized inputs, in 8-bit levels per pixel."""
    return np.abs(a - b) * (np.float32(std)[None, :, None, None] * 255)


def _photo(path, size, quality=90):
    """A real sample photo scaled to ``size`` and saved as ``path`` (JPEG by suffix)."""
    Image.open(sample_images()[3]).convert("RGB").resize(size, Image.BICUBIC).save(
        path, **({"quality": quality} if path.suffix == ".jpg" else {}))
    return path


def test_fast_output_shape_dtype_and_out_buffer(tmp_path):
    fast = preprocessor(Preprocessing(256, (224, 224), MEAN, STD), "fast")
    assert isinstance(fast, FastPreprocessing) and fast.mode == "fast"
    x = fast(sample_images()[0])
    assert x.shape == (1, 3, 224, 224) and x.dtype == np.float32 and x.flags.c_contiguous
    out = np.empty((1, 3, 224, 224), np.float32)
    assert fast.transform(fast.load(sample_images()[0]), out=out) is out
    np.testing.assert_array_equal(out, x)
    with pytest.raises(UsageError, match=r"out: received a float64 array of shape \(1, 3, 224, "
                                         r"224\), expected a C-contiguous float32"):
        fast.transform(fast.load(sample_images()[0]), out=np.empty((1, 3, 224, 224)))


@pytest.mark.parametrize("resize, crop, scales, mean_tol, max_tol", [
    (256, 224, {1}, 0.1, 1.01),   # samples are 256-512 px: no reduced decode, fused steps only
    (73, 64, {2, 4}, 1.0, None),  # decoded at 1/2 (shorter side 256-288 px), 1/4 (320 px)
    (64, 56, {4}, 2.0, None),     # decoded at 1/4
])
def test_fast_is_close_to_exact_on_real_jpegs(resize, crop, scales, mean_tol, max_tol):
    """Tolerance, in 8-bit levels: without a reduced decode the fused resize/crop differs from
    resize-then-crop by at most 1 level (rounding, < 10 % of values); a DCT-scaled decode
    differs by ~0.7 (1/2) and ~1.6 (1/4) levels on average over the samples (mean_tol; twice
    that per image), mostly at sharp edges, and never shifts the crop."""
    exact = Preprocessing(resize, (crop, crop), MEAN, STD)
    fast = preprocessor(exact, "fast")
    seen, means = set(), []
    for path in sample_images():
        img = fast.load(path)
        seen.add(img.draft_scale)
        a, b = exact(path), fast.transform(img)
        diff = _levels(a, b)
        means.append(diff.mean())
        assert diff.mean() <= 2 * mean_tol, path
        if max_tol is not None:
            assert diff.max() <= max_tol, path
        shifted = min(_levels(np.roll(a, (dy, dx), (2, 3)), b)[..., 2:-2, 2:-2].mean()
                      for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx)
        assert diff[..., 2:-2, 2:-2].mean() < shifted, path  # aligned: no shift fits better
    assert np.mean(means) <= mean_tol
    assert seen == scales


@pytest.mark.parametrize("size, side, whole, scale", [
    ((4000, 3000), 256, False, 8), ((2048, 1536), 256, False, 4), ((1024, 768), 256, False, 2),
    ((768, 1024), 256, False, 2), ((511, 600), 256, False, 1), ((512, 512), 256, False, 2),
    ((1030, 1030), 128, False, 8), ((1030, 1030), 128, True, 2), ((100, 100), 256, False, 1),
])
def test_draft_scale(size, side, whole, scale):
    assert draft_scale(size, side, whole) == scale


def test_jpeg_decoded_at_reduced_size_png_whole(tmp_path):
    exact = Preprocessing(256, (224, 224), MEAN, STD)
    fast = preprocessor(exact, "fast")
    jpg = _photo(tmp_path / "big.jpg", (1100, 700))
    img = fast.load(jpg)  # 700 // 2 = 350 >= 256, 700 // 4 = 175 < 256
    assert (img.draft_scale, img.full_size, img.size) == (2, (1100, 700), (550, 350))
    assert _levels(exact(jpg), fast.transform(img)).mean() <= 1.0
    png = _photo(tmp_path / "big.png", (1100, 700))
    img = fast.load(png)  # not a JPEG: decoded whole, then the fused steps
    assert (img.draft_scale, img.size) == (1, (1100, 700))
    assert _levels(exact(png), fast.transform(img)).max() <= 1.01
    gray = tmp_path / "gray.jpg"
    Image.open(jpg).convert("L").save(gray)
    assert fast.load(gray).draft_scale == 2 and fast(gray).shape == (1, 3, 224, 224)


def test_fast_honors_exif_orientation_with_reduced_decode(tmp_path):
    arr = np.zeros((80, 160, 3), np.uint8)
    arr[:40, :80] = 255  # white top-left block of the stored pixels
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    img.save(path, exif=exif, quality=95)
    for honor in (False, True):
        exact = Preprocessing(20, (20, 20), MEAN, STD, exif_transpose=honor)
        fast = preprocessor(exact, "fast")
        assert fast.load(path).draft_scale == 4  # 80 // 4 = 20, and 4 divides both sides
        assert _levels(exact(path), fast(path)).mean() <= 4.0


def test_fast_bad_inputs(tmp_path):
    pre = Preprocessing(32, (32, 32), MEAN, STD)
    with pytest.raises(UsageError, match="unknown --preprocess 'quick': expected one of exact, "
                                         "fast"):
        preprocessor(pre, "quick")
    with pytest.raises(UsageError, match="min_side 0: expected a positive integer"):
        draft_scale((640, 480), 0)
    fast = preprocessor(pre, "fast")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(UsageError, match="cannot read image .*bad.jpg"):
        fast(bad)
    with pytest.raises(UsageError, match="image not found: .*absent.jpg"):
        fast(tmp_path / "absent.jpg")
    with pytest.raises(UsageError, match="smaller than the 40x40 crop"):
        preprocessor(Preprocessing(32, (40, 40), MEAN, STD), "fast")(sample_images()[0])


def test_verify_with_fast_preprocessing_reports_agreement(split_bundle, tmp_path):
    """The gate of build/verify, on fast inputs against the torch reference on exact ones."""
    import json
    import shutil

    from sc2deploy.builders.build import verify_bundle

    copy = tmp_path / "b"
    shutil.copytree(split_bundle.path, copy)
    before = json.loads((copy / "manifest.json").read_text())["artifacts"]
    images = sample_images()[:8]  # 256-320 px JPEGs, 73 px resize: all decoded at 1/2
    exact = {r["target"]: r for r in verify_bundle(copy, images)}
    fast = {r["target"]: r for r in verify_bundle(copy, images, preprocess="fast")}
    row = fast["onnx"]
    assert row["preprocess"] == "fast" and row["reduced_decodes"] == 8 and row["images"] == 8
    assert exact["onnx"]["agreement_pct"] >= 99.9  # the exact path: onnxruntime = torch
    assert 80.0 <= row["agreement_pct"] < 100.0 and row["within_one_pct"] >= 99.0
    assert exact["onnx"]["task"]["top1_agree"] == 8  # fast: this tiny random student's
    assert row["task"]["images"] == 8 and 0 <= row["task"]["top1_agree"] <= 8  # top-1 flips
    assert "passed" in row and row["rule"]
    artifacts = json.loads((copy / "manifest.json").read_text())["artifacts"]
    recorded = artifacts["onnx"]["fidelity_by_preprocess"]["fast"]
    (entry,) = recorded.values()
    assert entry["stats"]["agreement_pct"] == row["agreement_pct"]
    assert entry["stats"]["preprocess"] == "fast"
    assert set(artifacts["onnx"]["fidelity_by_cpu"]) >= set(before["onnx"]["fidelity_by_cpu"])
