"""Image preprocessing as the manifest describes it (Pillow + numpy, torch-free).

Same arithmetic as torchvision's eval transform on PIL images: resize the
shorter side (bilinear), center-crop, scale to [0, 1], normalize by mean/std.
Decoding (modes, alpha, pixel limit) is in :mod:`sc2deploy.images`. The EXIF
orientation is ignored, as by the training loaders, unless ``exif_transpose``.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, List, Tuple

from sc2deploy.errors import UsageError
from sc2deploy.images import load_image
from sc2deploy.log import logger

if TYPE_CHECKING:
    import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm")
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

    def __call__(self, path: Path) -> "np.ndarray":
        """Return the [1, 3, H, W] float32 input for the image file at ``path``."""
        return self.transform(load_image(path))

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
        th, tw = self.crop
        w, h = img.size
        if (w < tw or h < th) and name not in _warned_small:
            _warned_small.add(name)
            logger.warning("image %s is %dx%d px, smaller than the %dx%d crop: it is upscaled "
                           "(blurred) to %d px on the shorter side", name, w, h, tw, th,
                           self.resize)
        return self._center_crop(self._resize(img))

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

