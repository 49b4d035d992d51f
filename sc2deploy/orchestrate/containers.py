"""``encode`` / ``decode``: images to container files and container files to latents.

::

    IMAGE... ─ head (target) ─ range coder ─ OUT/IMAGE_STEM.s2c   (each written atomically)
    IN.s2c (one container, or a batch of them) ─ range decoder ─ LATENT.npy (int32)
"""

import io
from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple

from sc2deploy import atomic
from sc2deploy.bundle import Bundle
from sc2deploy.errors import Interrupted, UsageError
from sc2deploy.targets.encoding import encode_images, latent_codec


def encode_to_folder(bundle: Path, images: Sequence[Path], out: Path, target: str = "onnx",
                     coder: Optional[str] = None,
                     echo: Callable[[str], None] = print,
                     preprocess: str = "exact") -> Tuple[Path, ...]:
    """Write one ``OUT/IMAGE_STEM.s2c`` per image; Ctrl-C keeps the complete ones."""
    images = [Path(p) for p in images]
    stems = [p.stem for p in images]
    if len(set(stems)) != len(stems):
        raise UsageError("two images share a file name stem; their containers would collide")
    folders = [str(p) for p in images if p.is_dir()]
    if folders:
        are = "is a folder" if len(folders) == 1 else "are folders"
        raise UsageError(f"{', '.join(folders)} {are}; encode takes image files: name them "
                         f"(e.g. {folders[0]}/*.jpg)")
    missing = [str(p) for p in images if not p.is_file()]
    if missing:
        raise UsageError(f"image not found: {', '.join(missing)}")
    opened = Bundle.open(bundle)
    written = []
    with atomic.output_folder(out, "--out") as out:  # removed again if nothing is written
        try:
            for path, data in encode_images(opened, images, target, coder, preprocess):
                written.append(atomic.write_bytes(out / f"{path.stem}.s2c", data))
                echo(f"{path} -> {written[-1]} ({len(data)} bytes)")
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted: {len(written)} of {len(images)} containers written "
                              f"to {out}, each complete") from None
    return tuple(written)


def decode_to_file(bundle: Path, stream: Path, out: Path, coder: Optional[str] = None
                   ) -> Tuple[int, ...]:
    """Save the int32 latent of a container ([C,H,W]) or a batch ([N,C,H,W]) as ``.npy``;
    returns its shape."""
    import numpy as np

    stream, out = Path(stream), Path(out)
    if stream.is_dir():
        raise UsageError(f"{stream} is a folder; decode takes one file: a .s2c container or a "
                         "batch of them")
    if not stream.is_file():
        raise UsageError(f"stream not found: {stream}")
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; decode writes one .npy file: name it, "
                         f"e.g. -o {out / (stream.stem + '.npy')}")
    opened = Bundle.open(bundle)
    with atomic.output_folder(out.parent, "the folder of --out"):
        latents = latent_codec(opened, coder).decode_batch(stream.read_bytes(),
                                                           opened.model["latent"]["shape"])
        if not latents:
            raise UsageError(f"{stream} is empty")
        latent = latents[0] if len(latents) == 1 else np.stack(latents)
        buf = io.BytesIO()
        np.save(buf, latent, allow_pickle=False)
        atomic.write_bytes(out, buf.getvalue())
    return tuple(latent.shape)
