"""Names of the supported heads and how their inputs are prepared (torch-free).

Two families exist:

* ``fp``: the factorized-prior bottleneck of the entropic student, Ladon and
  Singh et al. (convs + GDN1, integer latent coded with an entropy bottleneck);
* ``bq``: the BQ baseline (ResNet stem + channel reduction + per-tensor uint8
  quantization, no entropy model).
"""

from dataclasses import dataclass
from typing import Dict, Tuple

from sc2deploy.errors import UsageError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MIN_INPUT_SIZE = 32
MAX_INPUT_SIZE = 2048


@dataclass(frozen=True)
class HeadSpec:
    """What a published head is: family, key prefixes and preprocessing."""

    name: str
    family: str  # "fp" or "bq"
    crop: int
    resize: int
    description: str
    bq_channels: int = 0

    def with_input_size(self, size: int) -> "HeadSpec":
        """Return this spec for a square input of ``size`` pixels."""
        if not isinstance(size, int) or not MIN_INPUT_SIZE <= size <= MAX_INPUT_SIZE:
            raise UsageError(
                f"input size {size!r} is out of range: expected an integer "
                f"between {MIN_INPUT_SIZE} and {MAX_INPUT_SIZE} pixels"
            )
        resize = round(size * self.resize / self.crop)
        return HeadSpec(self.name, self.family, size, resize, self.description, self.bq_channels)

    def input_shape(self) -> Tuple[int, int, int, int]:
        return (1, 3, self.crop, self.crop)


def _registry() -> Dict[str, HeadSpec]:
    specs = [
        HeadSpec("entropic_student", "fp", 224, 256,
                 "entropic student bottleneck_resnet50 (WACV'22), 224 px"),
        HeadSpec("ladon", "fp", 416, 448, "Ladon splittable_resnet50-fp (WACV'25), 416 px"),
        HeadSpec("singh", "fp", 224, 256, "Singh et al. end-to-end baseline, 224 px"),
    ]
    for n in (2, 3, 6, 9, 12):
        specs.append(HeadSpec(f"bq{n}", "bq", 224, 256,
                              f"BQ baseline custom_resnet50-bq{n}ch, uint8 latent", bq_channels=n))
    return {s.name: s for s in specs}


HEADS: Dict[str, HeadSpec] = _registry()
DEMO_MODEL = "demo"


def get_spec(name: str) -> HeadSpec:
    """Look up a head by name; ``demo`` is the bundled entropic student."""
    key = "entropic_student" if name == DEMO_MODEL else name
    if key not in HEADS:
        known = ", ".join([DEMO_MODEL, *HEADS])
        raise UsageError(f"unknown model {name!r}; known models: {known}")
    return HEADS[key]
