"""Regenerate the sample images shipped in ``sc2deploy/data/samples``.

Dev-only tool: it needs scikit-image, which is *not* a dependency of
sc2deploy.  It reads public-domain / CC0 images bundled with the
scikit-image wheel (no network access), takes fixed crops, resizes them so
the shorter side is 256-320 px, and writes baseline JPEGs (quality 90, no
EXIF) together with ``LICENSES.md``.  The output is deterministic: running it
twice with the same library versions gives byte-identical files.

Usage::

    python scripts/make_sample_images.py [--out DIR]
"""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "sc2deploy" / "data" / "samples"

# scikit-image name -> (author/source as stated by scikit-image, license)
SOURCES = {
    "astronaut": ("NASA Great Images database (Eileen Collins)",
                  "Public domain"),
    "chelsea": ("Stefan van der Walt (photographer)", "CC0"),
    "coffee": ("Rachel Michetti (photographer), Pikolo Espresso Bar", "CC0"),
    "rocket": ("SpaceX (SpaceX Photos, DSCOVR launch)", "Public domain"),
    "hubble_deep_field": ("NASA / HubbleSite (Hubble eXtreme Deep Field)",
                          "Public domain"),
    "camera": ("Lav Varshney (photographer)", "CC0"),
}

# (source, crop box (left, top, right, bottom) in source pixels,
#  horizontal flip, shorter side of the output in px)
SPECS = [
    ("astronaut", (0, 0, 512, 512), False, 288),
    ("astronaut", (96, 0, 352, 256), False, 256),
    ("astronaut", (320, 0, 512, 320), False, 256),
    ("astronaut", (0, 0, 256, 384), True, 256),
    ("astronaut", (256, 320, 512, 512), False, 256),
    ("astronaut", (64, 128, 448, 448), True, 288),
    ("astronaut", (96, 288, 352, 512), False, 256),
    ("chelsea", (0, 0, 451, 300), False, 288),
    ("chelsea", (90, 20, 390, 230), False, 256),
    ("chelsea", (0, 0, 300, 300), True, 288),
    ("chelsea", (151, 0, 451, 300), False, 256),
    ("chelsea", (120, 90, 370, 300), True, 256),
    ("coffee", (0, 0, 600, 400), False, 320),
    ("coffee", (150, 0, 450, 300), False, 288),
    ("coffee", (280, 120, 480, 340), False, 256),
    ("coffee", (60, 100, 360, 400), True, 256),
    ("coffee", (400, 0, 600, 200), False, 256),
    ("coffee", (100, 50, 550, 350), True, 288),
    ("rocket", (0, 0, 640, 427), False, 320),
    ("rocket", (220, 100, 420, 427), False, 256),
    ("rocket", (220, 80, 420, 280), False, 256),
    ("rocket", (0, 0, 260, 427), True, 256),
    ("rocket", (60, 227, 460, 427), False, 256),
    ("rocket", (380, 50, 640, 427), True, 288),
    ("hubble_deep_field", (0, 0, 1000, 872), False, 320),
    ("hubble_deep_field", (0, 0, 500, 500), False, 288),
    ("hubble_deep_field", (350, 250, 650, 550), False, 256),
    ("hubble_deep_field", (600, 400, 900, 700), True, 300),
    ("hubble_deep_field", (40, 300, 340, 520), False, 256),
    ("hubble_deep_field", (0, 572, 600, 872), True, 256),
    ("camera", (0, 0, 512, 512), False, 288),
    ("camera", (300, 80, 512, 300), True, 256),
]

LICENSE_INTRO = (
    "All images in this folder are derived (cropped, resized, some flipped) "
    "from public-domain or CC0 images shipped with scikit-image "
    "(`skimage.data`), as documented in scikit-image's `skimage/data/"
    "_fetchers.py`. The derived images are themselves released under CC0 1.0 "
    "(https://creativecommons.org/publicdomain/zero/1.0/). They are generated "
    "by `scripts/make_sample_images.py`. Crop boxes are "
    "`(left, top, right, bottom)` in source pixels; the flip is applied after "
    "cropping, then the crop is resized (Lanczos) to the listed size."
)


def load_rgb(name):
    """Load a scikit-image sample as an RGB PIL image."""
    arr = np.asarray(getattr(data, name)(), dtype=np.uint8)
    return Image.fromarray(arr).convert("RGB")


def output_size(box, short):
    """Size (w, h) of a crop scaled so its shorter side equals ``short``."""
    w, h = box[2] - box[0], box[3] - box[1]
    scale = short / min(w, h)
    return (short, round(h * scale)) if w <= h else (round(w * scale), short)


def make_sample(src, box, flip, short):
    """Crop, optionally flip and resize one source image."""
    img = src.crop(box)
    if flip:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return img.resize(output_size(box, short), Image.Resampling.LANCZOS)


def license_table():
    """Markdown text of LICENSES.md."""
    lines = [
        "# Sample image licenses", "", LICENSE_INTRO, "",
        "| File | Source (`skimage.data`) | Author / source | License "
        "| Crop box | Flip | Size (w x h) |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, (name, box, flip, short) in enumerate(SPECS):
        author, lic = SOURCES[name]
        w, h = output_size(box, short)
        lines.append(
            f"| sample_{i:02d}.jpg | `{name}` | {author} | {lic} "
            f"| {box} | {'horizontal' if flip else 'none'} | {w} x {h} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    """Write all sample images and LICENSES.md to the output folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output folder (default: %(default)s)")
    out = parser.parse_args(argv).out
    out.mkdir(parents=True, exist_ok=True)
    sources = {name: load_rgb(name) for name in SOURCES}
    for i, (name, box, flip, short) in enumerate(SPECS):
        img = make_sample(sources[name], box, flip, short)
        img.save(out / f"sample_{i:02d}.jpg", "JPEG", quality=90,
                 optimize=False, progressive=False)
    (out / "LICENSES.md").write_text(license_table(), encoding="utf-8")
    print(f"wrote {len(SPECS)} images and LICENSES.md to {out}")


if __name__ == "__main__":
    main()
