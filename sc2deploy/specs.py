"""Names of the supported heads and how their inputs are prepared (torch-free).

Two families exist:

* ``fp``: the factorized-prior bottleneck of the entropic student, Ladon and
  Singh et al. (convs + GDN1, integer latent coded with an entropy bottleneck);
* ``bq``: the BQ baseline (ResNet stem + channel reduction + per-tensor uint8
  quantization, no entropy model).
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

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

# The bundled demo: a β ladder of entropic students (scripts/train_demo_ladder.py), one
# checkpoint per point, named demo-beta<β>; "demo" is the default point.
DEMO_MODEL = "demo"
DEMO_LADDER_DIR = Path(__file__).resolve().parent / "data" / "demo_ladder"
DEMO_DEFAULT_POINT = "demo-beta1"
_POINT = re.compile(r"^demo-beta(\d+(?:\.\d+)?)$")


def demo_ladder() -> List[str]:
    """The bundled ladder's point names, from the most bytes (smallest β) to the fewest."""
    points = [p.stem for p in DEMO_LADDER_DIR.glob("demo-beta*.pt") if _POINT.match(p.stem)]
    return sorted(points, key=lambda name: float(_POINT.match(name).group(1)))


def demo_point(name: str) -> str:
    """The ladder point a demo model name stands for ("demo": the default point)."""
    return DEMO_DEFAULT_POINT if name == DEMO_MODEL else name


def is_demo(name: str) -> bool:
    return name == DEMO_MODEL or bool(_POINT.match(name))


def demo_checkpoint(name: str) -> Path:
    """The bundled checkpoint of a demo model name; UsageError naming the points if none."""
    point = demo_point(name)
    path = DEMO_LADDER_DIR / f"{point}.pt"
    if not path.is_file():
        raise UsageError(f"unknown demo ladder point {name!r}; the bundled points: "
                         f"{', '.join(demo_ladder()) or 'none (run make demo-ladder)'}")
    return path


def get_spec(name: str) -> HeadSpec:
    """Look up a head by name; ``demo`` and ``demo-beta<β>`` are the bundled entropic
    students."""
    key = "entropic_student" if is_demo(name) else name
    if key not in HEADS:
        known = ", ".join([DEMO_MODEL, "demo-beta<β>", *HEADS])
        raise UsageError(f"unknown model {name!r}; known models: {known}")
    return HEADS[key]
