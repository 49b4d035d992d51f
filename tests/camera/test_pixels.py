"""Raw V4L2 frames to RGB: YUYV against the formula pixel by pixel, and against its inverse."""

import numpy as np
import pytest

from sc2deploy.camera import pixels
from sc2deploy.errors import CameraError
from sc2deploy.preprocess import sample_images


def clip(v):
    return max(0, min(255, v))


def yuyv_reference(data: bytes, width: int, height: int):
    """The docstring's formula, one pixel at a time in Python integers."""
    out = np.zeros((height, width, 3), np.uint8)
    for row in range(height):
        for pair in range(width // 2):
            y0, u, y1, v = data[(row * width // 2 + pair) * 4:][:4]
            for k, y in enumerate((y0, y1)):
                c, d, e = y - 16, u - 128, v - 128
                out[row, 2 * pair + k] = (clip((298 * c + 409 * e + 128) >> 8),
                                          clip((298 * c - 100 * d - 208 * e + 128) >> 8),
                                          clip((298 * c + 516 * d + 128) >> 8))
    return out


def rgb_to_yuyv(rgb: np.ndarray) -> bytes:
    """BT.601 limited range, the inverse direction (float, rounded); pairs share chroma."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    h, w = y.shape
    out = np.empty((h, w // 2, 4), np.uint8)
    out[..., 0], out[..., 2] = np.round(y[:, 0::2]), np.round(y[:, 1::2])
    out[..., 1] = np.round((u[:, 0::2] + u[:, 1::2]) / 2)
    out[..., 3] = np.round((v[:, 0::2] + v[:, 1::2]) / 2)
    return out.tobytes()


def test_yuyv_equals_the_formula_on_every_byte_value():
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, 16 * 6 * 2, dtype=np.uint8).tobytes()
    data = bytes(range(256)) + data[256:]  # every value somewhere, extremes included
    got = pixels.yuyv_to_rgb(data, 16, 6)
    assert np.array_equal(got, yuyv_reference(data, 16, 6))


def test_yuyv_of_a_real_image_comes_back_within_rounding():
    from PIL import Image

    img = Image.open(sample_images()[0]).convert("RGB").resize((64, 48))
    rgb = np.repeat(np.asarray(img)[:, 0::2], 2, axis=1)  # pairs of equal pixels: no 4:2:2 loss
    back = pixels.yuyv_to_rgb(rgb_to_yuyv(rgb), 64, 48).astype(int)
    assert np.abs(back - rgb).max() <= 3
    assert np.abs(back - rgb).mean() < 1.0


def test_padded_rows_give_the_same_image():
    rng = np.random.default_rng(1)
    rows = rng.integers(0, 256, (5, 8 * 2), dtype=np.uint8)
    padded = np.concatenate([rows, np.full((5, 12), 7, np.uint8)], axis=1)
    plain = pixels.yuyv_to_rgb(rows.tobytes(), 8, 5)
    assert np.array_equal(pixels.yuyv_to_rgb(padded.tobytes(), 8, 5, 28), plain)
    # the last row's padding may be left out of the buffer
    assert np.array_equal(pixels.yuyv_to_rgb(padded.tobytes()[:-12], 8, 5, 28), plain)


def test_rgb24_and_grey_frames():
    rgb = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    assert np.array_equal(np.asarray(pixels.decode("RGB3", rgb.tobytes(), 6, 4)), rgb)
    grey = np.arange(24, dtype=np.uint8).reshape(4, 6)
    out = np.asarray(pixels.decode("GREY", grey.tobytes(), 6, 4))
    assert out.shape == (4, 6, 3) and all(np.array_equal(out[..., i], grey) for i in range(3))


def test_short_frames_odd_widths_and_unknown_formats_are_refused():
    with pytest.raises(CameraError, match="too short for 8x4 at 2 bytes per pixel"):
        pixels.decode("YUYV", bytes(40), 8, 4)
    with pytest.raises(CameraError, match="even width; got 7"):
        pixels.yuyv_to_rgb(bytes(7 * 2 * 2), 7, 2)
    with pytest.raises(CameraError, match="'NV12' is not supported; supported: MJPG"):
        pixels.decode("NV12", bytes(10), 2, 2)
