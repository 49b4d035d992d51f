"""Generated 10-class texture images (numpy only): the demo's task and the task gate's images.

Ten textures of period 8-16 px (stripes in four orientations, zigzag, checks, grid,
dots, random speckle, and plain) in two random colours, filling a disc or a rectangle
of random size and position on a noisy gradient background. A texture blurred away
(JPEG at low quality, a coarse latent) looks plain or like another one, so the task
needs spatial detail and rate–accuracy curves mean something.

Every image depends only on (seed, class, index), so a set is the same on every machine.
Seeds: TRAIN_SEED trains the demo students, EVAL_SEED is the demo's evaluation set,
GATE_SEED the task gate's default images (``sc2deploy build``): neither trained nor
evaluated on, so the gate's verdict can be checked on the evaluation set.
"""

from typing import List, Tuple

import numpy as np

CLASSES: Tuple[str, ...] = ("antidiagonal", "checker", "diagonal", "dots", "grid",
                             "hstripes", "plain", "speckle", "vstripes", "zigzag")
TRAIN_SEED = 1
EVAL_SEED = 2
GATE_SEED = 3  # the task gate's default images
NOISE = 3.0  # std of the Gaussian pixel noise (0-255 scale)


def _colour(rng: np.random.Generator, away_from: np.ndarray = None) -> np.ndarray:
    """A random RGB colour; at least 60 levels (mean over channels) from ``away_from``."""
    while True:
        c = rng.uniform(0, 255, 3)
        if away_from is None or np.abs(c - away_from).mean() >= 60:
            return c


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    a, b = _colour(rng), _colour(rng)
    t = np.broadcast_to(np.linspace(0.0, 1.0, size)[:, None], (size, size))
    ramp = t if rng.random() < 0.5 else t.T
    return a + (b - a) * ramp[..., None] * rng.uniform(0.2, 0.6)


def _region(rng: np.random.Generator, size: int) -> np.ndarray:
    """A disc or a rectangle around the centre, most of the 224/256 centre crop."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    cx, cy = size / 2 + rng.uniform(-0.08, 0.08, 2) * size
    r = rng.uniform(0.3, 0.42) * size
    if rng.random() < 0.5:
        return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    ax, ay = r * rng.uniform(0.8, 1.0, 2)
    return (np.abs(xx - cx) <= ax) & (np.abs(yy - cy) <= ay)


def _pattern(name: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """A boolean texture of period 8-16 px over the whole image."""
    yy, xx = np.mgrid[0:size, 0:size]
    p = int(rng.integers(8, 17))
    phase = int(rng.integers(0, p))
    if name == "plain":
        return np.ones((size, size), dtype=bool)
    if name == "hstripes":
        return ((yy + phase) % p) < p / 2
    if name == "vstripes":
        return ((xx + phase) % p) < p / 2
    if name in ("diagonal", "antidiagonal"):
        sign = 1 if name == "diagonal" else -1
        return ((xx + sign * yy + phase) % p) < p / 2
    if name == "checker":
        h = max(2, p // 2)
        return (((xx + phase) // h) + ((yy + phase) // h)) % 2 == 0
    if name == "grid":
        w = max(1, p // 4)
        return (((xx + phase) % p) < w) | (((yy + phase) % p) < w)
    if name == "zigzag":  # diagonal stripes whose direction flips every p columns
        flip = np.where(((xx + phase) // p) % 2 == 0, 1, -1)
        return ((yy + flip * (xx % p) + phase) % p) < p / 2
    if name == "speckle":  # random 2x2 cells
        cells = rng.random(((size + 1) // 2, (size + 1) // 2)) < 0.5
        return np.kron(cells, np.ones((2, 2), dtype=bool))[:size, :size]
    q = p + 2  # dots
    dx, dy = (xx + phase) % q - q / 2, (yy + phase) % q - q / 2
    return dx * dx + dy * dy <= (q * rng.uniform(0.22, 0.32)) ** 2


def render(class_index: int, seed: int, index: int, size: int = 256) -> np.ndarray:
    """The ``index``-th image of class ``class_index`` for ``seed``: uint8 [size, size, 3]."""
    rng = np.random.default_rng([seed, class_index, index])
    img = _background(rng, size)
    region = _region(rng, size)
    c1 = _colour(rng, img[size // 2, size // 2])
    c2 = _colour(rng, c1)
    on = _pattern(CLASSES[class_index], rng, size)
    img[region & on] = c1
    img[region & ~on] = c2
    img = img + rng.normal(0.0, NOISE, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def gate_images(count: int, size: int = 256) -> List[np.ndarray]:
    """``count`` images of seed GATE_SEED, the classes in turn (any prefix is balanced):
    uint8 [size, size, 3] each."""
    return [render(j % len(CLASSES), GATE_SEED, j // len(CLASSES), size) for j in range(count)]
