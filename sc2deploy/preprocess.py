"""Image preprocessing as the manifest describes it (Pillow + numpy, torch-free).

Same arithmetic as torchvision's eval transform on PIL images: resize the
shorter side (bilinear), center-crop, scale to [0, 1], normalize by mean/std.
Decoding (modes, alpha, pixel limit) is in :mod:`sc2deploy.images`. The EXIF
orientation is ignored, as by the training loaders, unless ``exif_transpose``.

Two modes (``--preprocess``), the same geometry::

    exact  decode whole ─ resize shorter side ─ center-crop ─ /255, -mean, /std   (training's)
    fast   decode JPEG at 1/2, 1/4, 1/8 (DCT scaling, shorter side still >= resize)
           ─ resize the crop's box straight to the crop size ─ one table look-up per channel
             into a float32 NCHW array (the same values as exact's arithmetic)

The fast mode's pixels differ a little from training's (the codec's scaled decode); its effect
on symbols and task is measured by ``verify --preprocess fast``.
"""

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, List, Tuple

from sc2deploy.errors import UsageError
from sc2deploy.images import load_image
from sc2deploy.log import logger

if TYPE_CHECKING:
    import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm")
MODES = ("exact", "fast")  # --preprocess
MODES_HELP = ("image preprocessing: exact = as in training (default); fast = JPEGs decoded at "
              "reduced size (DCT scaling) and resize, crop and normalization fused "
              "(docs/preprocessing.md)")
_warned_small = set()  # files already reported as smaller than the crop (once per process)


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes the head's normalized NCHW float32 input."""

    resize: int
    crop: Tuple[int, int]
    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]
    exif_transpose: bool = False  # apply the EXIF orientation first (training loaders do not)

    @classmethod
    def from_manifest(cls, spec: dict) -> "Preprocessing":
        return cls(int(spec["resize"]), tuple(spec["crop"]), tuple(spec["mean"]),
                   tuple(spec["std"]), bool(spec.get("exif_transpose", False)))

    def to_manifest(self) -> dict:
        return {"resize": self.resize, "crop": list(self.crop), "interpolation": "bilinear",
                "color": "RGB", "scale": "1/255", "mean": list(self.mean), "std": list(self.std),
                "exif_transpose": self.exif_transpose}

    mode = "exact"  # class attribute, not recorded in the manifest: how this process decodes

    def __call__(self, path: Path) -> "np.ndarray":
        """Return the [1, 3, H, W] float32 input for the image file at ``path``."""
        return self.transform(self.load(path))

    def load(self, path: Path):
        """Decode the image file at ``path`` as ``transform`` expects it."""
        return load_image(path)

    def transform(self, img) -> "np.ndarray":
        """A decoded RGB Pillow image (see ``load_image``) → the [1, 3, H, W] float32 input."""
        import numpy as np  # here, so listing images (e.g. for remote runs) needs no numpy

        arr = np.asarray(self._prepare(img), dtype=np.float32)
        arr = arr / np.float32(255)
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        arr = (arr - mean) / std
        return np.ascontiguousarray(arr.transpose(2, 0, 1)[None])

    def cropped_image(self, path: Path):
        """The RGB Pillow image the head sees (resized and cropped, not normalized)."""
        return self._prepare(load_image(path))

    def _prepare(self, img):
        """Orient (if asked), resize and center-crop; warn once per file about upscaling."""
        name = getattr(img, "filename", "") or "(in memory)"
        if self.exif_transpose:
            img = _exif_transpose(img, name)
        w, h = img.size
        self._warn_if_small(name, w, h)
        return self._center_crop(self._resize(img))

    def _warn_if_small(self, name: str, w: int, h: int) -> None:
        """Warn once per file that an image smaller than the crop gets upscaled."""
        th, tw = self.crop
        if (w < tw or h < th) and name not in _warned_small:
            _warned_small.add(name)
            logger.warning("image %s is %dx%d px, smaller than the %dx%d crop: it is upscaled "
                           "(blurred) to %d px on the shorter side", name, w, h, tw, th,
                           self.resize)

    def _resize(self, img):
        from PIL import Image

        w, h = img.size
        short, long = (w, h) if w <= h else (h, w)
        new_long = int(self.resize * long / short)
        size = (self.resize, new_long) if w <= h else (new_long, self.resize)
        return img.resize(size, Image.BILINEAR)

    def _center_crop(self, img):
        th, tw = self.crop
        w, h = img.size
        if w < tw or h < th:
            raise UsageError(f"image of {w}x{h} px is smaller than the {tw}x{th} crop")
        top = int(round((h - th) / 2.0))
        left = int(round((w - tw) / 2.0))
        return img.crop((left, top, left + tw, top + th))


@dataclass(frozen=True)
class FastPreprocessing(Preprocessing):
    """The ``fast`` mode of the same preprocessing (see the module docstring); torch-free."""

    mode = "fast"

    def load(self, path: Path):
        """Decode, a JPEG at the smallest DCT scale whose shorter side is >= ``resize``."""
        # With exif_transpose only scales dividing both sides: the decoded image then covers
        # the stored one exactly, whatever the orientation.
        return load_image(path, min_side=self.resize, whole_blocks=self.exif_transpose)

    def transform(self, img, out: "np.ndarray" = None) -> "np.ndarray":
        """A decoded image (``load``, or any RGB Pillow image) → [1, 3, H, W] float32, written
        into ``out`` when given (C-contiguous float32 of that shape)."""
        import numpy as np
        from PIL import Image

        th, tw = self.crop
        if out is None:
            out = np.empty((1, 3, th, tw), np.float32)
        elif (out.shape != (1, 3, th, tw) or out.dtype != np.float32
              or not out.flags.c_contiguous):
            raise UsageError(f"out: received a {out.dtype} array of shape {tuple(out.shape)}, "
                             f"expected a C-contiguous float32 array of shape (1, 3, {th}, {tw})")
        img, box = self._oriented_box(img)
        pixels = np.asarray(img.resize((tw, th), Image.BILINEAR, box=box))
        for c, table in enumerate(_tables(self.mean, self.std)):
            np.take(table, pixels[:, :, c], out=out[0, c])
        return out

    def _oriented_box(self, img):
        """(the image, oriented if asked; the exact path's crop in its coordinates); warns
        about upscaling like the exact path."""
        name = getattr(img, "filename", "") or "(in memory)"
        scale = getattr(img, "draft_scale", 1)
        full = getattr(img, "full_size", None) or img.size
        if self.exif_transpose:
            decoded = img.size
            img = _exif_transpose(img, name)
            if img.size != decoded:  # rotated by 90 degrees; whole blocks: full = s * decoded
                full = full[::-1]
        w, h = full
        th, tw = self.crop
        self._warn_if_small(name, w, h)
        short, long = (w, h) if w <= h else (h, w)
        new_long = int(self.resize * long / short)
        nw, nh = (self.resize, new_long) if w <= h else (new_long, self.resize)
        if nw < tw or nh < th:
            raise UsageError(f"image of {nw}x{nh} px is smaller than the {tw}x{th} crop")
        top, left = int(round((nh - th) / 2.0)), int(round((nw - tw) / 2.0))
        fx, fy = w / nw / scale, h / nh / scale  # decoded pixels per resized pixel
        dw, dh = img.size
        return img, (left * fx, top * fy, min((left + tw) * fx, dw), min((top + th) * fy, dh))


@lru_cache(maxsize=8)
def _tables(mean: Tuple[float, ...], std: Tuple[float, ...]):
    """Per channel, the normalized value of each 8-bit level (exact's float32 arithmetic)."""
    import numpy as np

    levels = np.arange(256, dtype=np.float32) / np.float32(255)
    return tuple((levels - np.float32(m)) / np.float32(s) for m, s in zip(mean, std))


def preprocessor(pre: Preprocessing, mode: str = "exact") -> Preprocessing:
    """``pre`` in the given mode (``MODES``): the exact one, or its fast variant."""
    if mode not in MODES:
        raise UsageError(f"unknown --preprocess {mode!r}: expected one of {', '.join(MODES)} "
                         "(exact: as in training; fast: reduced-size JPEG decoding, fused "
                         "resize/crop/normalization)")
    if mode == "exact":
        return Preprocessing(pre.resize, pre.crop, pre.mean, pre.std, pre.exif_transpose)
    return FastPreprocessing(pre.resize, pre.crop, pre.mean, pre.std, pre.exif_transpose)


def _exif_transpose(img, name: str):
    from PIL import ImageOps

    try:
        return ImageOps.exif_transpose(img)
    except (SyntaxError, ValueError, OSError) as exc:
        raise UsageError(f"image {name} has unreadable EXIF data ({exc}), and this bundle applies "
                         "the EXIF orientation (exported with --exif-transpose): re-save the "
                         "image without EXIF") from None


def list_images(folder: Path) -> List[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"image folder not found: {folder}")
    images = sorted(p for p in folder.iterdir()
                    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise UsageError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return images


def sample_images() -> List[Path]:
    """The sample images shipped with sc2deploy (CC0 / public domain)."""
    return list_images(Path(__file__).parent / "data" / "samples")

