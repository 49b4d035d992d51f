"""Image decoding: every mode to RGB 8-bit (scaled, never clipped), pixel limit, bad files."""

import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from sc2deploy.errors import UsageError
from sc2deploy.images import PIXELS_ENV, load_image, to_rgb8

# 16-bit samples around the byte boundaries; the high byte is what 8-bit keeps.
V16 = np.array([0, 1, 255, 256, 257, 0x7FFF, 0x8000, 0x80FF, 0xFF00, 0xFFFF], np.uint16)


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def _png(path, width, height, depth, color_type, rows: bytes = b""):
    """A PNG written byte by byte (Pillow cannot write 48/64-bit); rows: unfiltered pixels."""
    header = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
                     + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b""))
    return path


def _png16(path, arr):
    """A 16-bit PNG of a (H, W, C) uint16 array: C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA."""
    h, w, c = arr.shape
    rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in arr)
    return _png(path, w, h, 16, {1: 0, 2: 4, 3: 2, 4: 6}[c], rows)


def test_16bit_gray_png_is_scaled_not_clipped(tmp_path):
    gradient = np.linspace(0, 65535, 4 * 256).round().astype(np.uint16).reshape(4, 256)
    path = tmp_path / "gray16.png"
    Image.fromarray(gradient).save(path)
    with Image.open(path) as img:
        assert img.mode == "I;16"
        assert (np.asarray(img.convert("RGB")) == 255).mean() > 0.9  # what convert() does
    rgb = load_image(path)
    assert rgb.mode == "RGB"
    arr = np.asarray(rgb)
    np.testing.assert_array_equal(arr, np.repeat((gradient >> 8)[..., None], 3, axis=2))
    assert (arr == 255).mean() < 0.01
    exact = np.round(gradient.astype(np.float64) * 255 / 65535)
    assert np.abs(arr[..., 0] - exact).max() <= 1


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16bit_png_of_any_color_type_keeps_the_high_byte(tmp_path, channels):
    # Gray 16-bit: our scaling; gray+alpha, RGB (48-bit), RGBA (64-bit): Pillow itself decodes
    # them to 8 bits (LA 16-bit opens as RGBA); alpha is dropped.
    arr = np.stack([V16, V16[::-1], V16 // 2, V16 // 3][:channels], axis=-1)[None]
    path = _png16(tmp_path / f"c{channels}.png", arr)
    with Image.open(path) as img:
        assert img.mode == {1: "I;16", 2: "RGBA", 3: "RGB", 4: "RGBA"}[channels]
    got = np.asarray(load_image(path))[0]
    color = arr[0, :, :3] if channels >= 3 else arr[0, :, :1].repeat(3, axis=1)
    np.testing.assert_array_equal(got, color >> 8)


def test_16bit_pgm_mode_i_and_float_pfm(tmp_path):
    pgm = tmp_path / "gray16.ppm"
    pgm.write_bytes(b"P5\n10 1\n65535\n" + V16.astype(">u2").tobytes())
    pfm = tmp_path / "float.ppm"
    pfm.write_bytes(b"Pf\n4 1\n-1.0\n" + np.array([0, 0.5, 1, 0.25], "<f4").tobytes())
    with Image.open(pgm) as a, Image.open(pfm) as b:
        assert (a.mode, b.mode) == ("I", "F")
    np.testing.assert_array_equal(np.asarray(load_image(pgm))[0, :, 1], V16 >> 8)
    np.testing.assert_array_equal(np.asarray(load_image(pfm))[0, :, 2], [0, 128, 255, 64])


def test_out_of_range_i_and_f_values_clip_at_the_ends():
    ints = Image.fromarray(np.array([[-5, 0, 65535, 70000]], np.int32))
    floats = Image.fromarray(np.array([[-1, np.nan, 2, 0.5]], np.float32))
    assert (ints.mode, floats.mode) == ("I", "F")
    np.testing.assert_array_equal(np.asarray(to_rgb8(ints))[0, :, 0], [0, 0, 255, 255])
    np.testing.assert_array_equal(np.asarray(to_rgb8(floats))[0, :, 0], [0, 0, 255, 128])


@pytest.mark.parametrize("transparency", [None, 1, bytes([255, 0, 128, 255])])
def test_palette_images_use_their_colors(tmp_path, transparency):
    img = Image.new("P", (4, 1))
    img.putpalette([10, 20, 30, 40, 50, 60, 70, 80, 90, 200, 210, 220])
    img.putdata([0, 1, 2, 3])
    path = tmp_path / "palette.png"
    img.save(path, **({} if transparency is None else {"transparency": transparency}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow warns on convert("RGB") of bytes transparency
        rgb = load_image(path)
    np.testing.assert_array_equal(np.asarray(rgb)[0], [[10, 20, 30], [40, 50, 60], [70, 80, 90],
                                                       [200, 210, 220]])


@pytest.mark.parametrize("mode, suffix", [("LA", "png"), ("RGBA", "png"), ("RGBA", "webp"),
                                          ("CMYK", "jpg"), ("1", "png"), ("L", "bmp")])
def test_8bit_modes_match_the_training_loader(tmp_path, mode, suffix):
    # Training does Image.open(f).convert("RGB"): alpha dropped, CMYK by Pillow's formula.
    rng = np.random.default_rng(0)
    bands = len(Image.new(mode, (1, 1)).getbands())
    img = Image.fromarray(rng.integers(0, 256, (8, 8, 4), dtype=np.uint8), "RGBA")
    img = img.convert(mode) if bands != 4 else Image.merge(mode, img.split())
    path = tmp_path / f"img.{suffix}"
    img.save(path, **({"lossless": True} if suffix == "webp" else {}))
    with Image.open(path) as opened:
        assert opened.mode == mode
        training = np.asarray(opened.convert("RGB"))
    np.testing.assert_array_equal(np.asarray(load_image(path)), training)
    if mode == "1":
        assert set(np.unique(training)) == {0, 255}


def test_image_limits_become_usage_errors(tmp_path, monkeypatch):
    monkeypatch.delenv(PIXELS_ENV, raising=False)
    bomb = _png(tmp_path / "bomb.png", 20000, 20000, 8, 0, b"\0\0")  # 60 bytes on disk
    assert bomb.stat().st_size < 100
    with pytest.raises(UsageError, match=r"bomb\.png claims 20000x20000 = 400,000,000 pixels, "
                                         r"more than the limit of 89,478,485 .*"
                                         rf"{PIXELS_ENV}=400000000"):
        load_image(bomb)
    # Between Pillow's limit and twice it Pillow only warns: an error here too, before decoding.
    with pytest.raises(UsageError, match="10000x10000"):
        load_image(_png(tmp_path / "warn.png", 10000, 10000, 8, 0, b"\0\0"))
    assert Image.MAX_IMAGE_PIXELS == 89478485  # restored

    small = tmp_path / "small.png"
    Image.new("RGB", (200, 100)).save(small)
    monkeypatch.setenv(PIXELS_ENV, "19999")
    with pytest.raises(UsageError, match="limit of 19,999"):
        load_image(small)
    monkeypatch.setenv(PIXELS_ENV, "20000")
    assert load_image(small).size == (200, 100)
    monkeypatch.setenv(PIXELS_ENV, "lots")
    with pytest.raises(UsageError, match=f"{PIXELS_ENV}='lots' is invalid: expected a positive"):
        load_image(small)


def _corrupt(tmp_path, kind):
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    path = tmp_path / f"{kind}.{'jpg' if 'jpeg' in kind else 'png'}"
    img.save(path)
    data = path.read_bytes()
    if kind == "empty":
        data = b""
    elif kind.startswith("truncated"):
        data = data[:len(data) // 2]
    elif kind == "header_only":
        data = data[:33]
    elif kind == "bad_crc":
        data = data[:100] + b"x" * 10 + data[110:]
    elif kind == "text":
        data = b"not an image"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("kind", ["empty", "truncated_png", "truncated_jpeg", "header_only",
                                  "bad_crc", "text"])
def test_unreadable_files_name_the_file(tmp_path, kind):
    path = _corrupt(tmp_path, kind)
    with pytest.raises(UsageError, match=rf"cannot read image .*{path.name}: .*re-save or replace"):
        load_image(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(UsageError, match="image not found: .*absent.png"):
        load_image(tmp_path / "absent.png")
    with pytest.raises(UsageError, match="image not found"):
        load_image(tmp_path)
