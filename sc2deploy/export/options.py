"""What ``export`` and ``add-tail`` take, declared once (:mod:`sc2deploy.options`) for the
Python API and the command line; light to import (no torch)."""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from sc2deploy.options import option, validate
from sc2deploy.preprocess import list_images
from sc2deploy.specs import DEMO_MODEL, HEADS, demo_ladder

AUTO, SIGN_TRICK, PLAIN = "auto", "compressai-1.2.4", "compressai-1.2.6"
TABLE_FORMULAS = (AUTO, SIGN_TRICK, PLAIN)  # pmf of tables a checkpoint does not store


@dataclass(frozen=True)
class ExportOptions:
    """What to export and where."""

    model: str = option(positional=True, metavar="MODEL",
                        help=f"one of: {', '.join([DEMO_MODEL, *HEADS])}; the demo ladder's "
                             f"points: {', '.join(demo_ladder())}")
    out: Path = option(flag="--out", type=Path, required=True, metavar="BUNDLE",
                       help="bundle directory to write")
    checkpoint: Optional[Path] = option(None, flag="--checkpoint", type=Path, metavar="CKPT",
                                        help="torchdistill/sc2bench checkpoint (not needed for "
                                             "'demo')")
    input_size: Optional[int] = option(None, flag="--input-size", type=int, metavar="N",
                                       minimum=1, help="square input size in pixels (default: "
                                                       "the model's own)")
    images: Optional[Sequence[Path]] = option(
        None, flag="--images", type=Path, metavar="DIR", parse=list_images,
        help="verification images (default: the bundled samples)")
    force: bool = option(False, flag="--force", type=bool, help="replace an existing bundle")
    tables_formula: str = option(
        AUTO, flag="--tables-formula", choices=TABLE_FORMULAS,
        help="pmf used when the checkpoint has no stored update() tables: compressai-1.2.4 "
             "(sign trick, CompressAI <= 1.2.4), compressai-1.2.6 (CompressAI >= 1.2.6), "
             "auto (by parameter names: _matrix{i} and _matrices.{i} -> compressai-1.2.4, "
             "matrices.{i} -> compressai-1.2.6)")
    exif_transpose: bool = option(False, flag="--exif-transpose", type=bool,
                                  help="preprocessing applies the images' EXIF orientation "
                                       "(default: ignored, as by the training loaders)")

    def __post_init__(self):
        validate(self)


@dataclass(frozen=True)
class AddTailOptions:
    """Which checkpoint's tail to add to which bundle, under which name."""

    bundle: Path = option(positional=True, type=Path, metavar="BUNDLE", help="bundle directory")
    name: str = option(flag="--name", required=True, metavar="NAME",
                       help="the tail's name: 1-32 of a-z 0-9 _ - (not 'tail' or 'default'); "
                            "the file is tail-NAME.onnx")
    checkpoint: Path = option(flag="--checkpoint", type=Path, required=True, metavar="CKPT",
                              help="full student checkpoint whose head equals the bundle's "
                                   "(refused otherwise)")
    replace: bool = option(False, flag="--replace", type=bool,
                           help="replace an existing tail of that name")

    def __post_init__(self):
        validate(self)
