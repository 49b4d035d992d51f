"""``encode``, ``decode``: images to containers with a bundle, and a container back to its
latent."""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

from sc2deploy.codec.backends import CODERS
from sc2deploy.measure.options import CODER_HELP
from sc2deploy.options import Command, option
from sc2deploy.preprocess import MODES as PREPROCESS_MODES, MODES_HELP


@dataclass(frozen=True)
class EncodeOptions:
    bundle: Path = option(positional=True, type=Path, metavar="BUNDLE", help="bundle directory")
    images: Tuple[Path, ...] = option(positional=True, type=Path, nargs="+", metavar="IMAGE",
                                      help="image files")
    out: Path = option(flag="--out", short="-o", type=Path, required=True, metavar="DIR",
                       help="folder for the containers: one IMAGE_STEM.s2c per image")
    target: str = option("onnx", flag="--target",
                         help="artifact that runs the head (default: {default})")
    coder: Optional[str] = option(None, flag="--coder", choices=CODERS, help=CODER_HELP)
    preprocess: str = option("exact", flag="--preprocess", choices=PREPROCESS_MODES,
                             help=MODES_HELP)


def encode(options: EncodeOptions) -> int:
    from sc2deploy.orchestrate.containers import encode_to_folder

    encode_to_folder(options.bundle, options.images, options.out, options.target,
                     options.coder, preprocess=options.preprocess)
    return 0


@dataclass(frozen=True)
class DecodeOptions:
    bundle: Path = option(positional=True, type=Path, metavar="BUNDLE",
                          help="bundle that encoded it")
    stream: Path = option(positional=True, type=Path, metavar="IN",
                          help=".s2c container or batch file")
    out: Path = option(flag="--out", short="-o", type=Path, required=True, metavar="LATENT.npy",
                       help="int32 latent: [C,H,W] for one container, [N,C,H,W] for a batch")
    coder: Optional[str] = option(None, flag="--coder", choices=CODERS, help=CODER_HELP)


def decode(options: DecodeOptions) -> int:
    from sc2deploy.orchestrate.containers import decode_to_file

    shape = decode_to_file(options.bundle, options.stream, options.out, options.coder)
    print(f"{options.stream} -> {options.out} (int32 {list(shape)})")
    return 0


COMMANDS = {
    "encode": Command("encode images to containers with a bundle", EncodeOptions, encode),
    "decode": Command("decode a container (or a batch of them) to a latent", DecodeOptions,
                      decode),
}
