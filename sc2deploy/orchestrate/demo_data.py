"""The demo's labeled data: a generated 10-class image set (numpy + Pillow, torch-free).

The images are ``sc2deploy.textures`` (ten textures on noisy backgrounds, re-exported here);
this module writes them as labeled sets.

Every image depends only on (seed, class, index): train, eval and the task gate's sets are
separated by their seeds, and a set is the same on every machine.
"""

import os
import shutil
import tempfile
from pathlib import Path

from sc2deploy import atomic
from sc2deploy.errors import UsageError
from sc2deploy.textures import (CLASSES, EVAL_SEED, GATE_SEED, NOISE,  # noqa: F401
                                 TRAIN_SEED, render)  # re-exported


def write_labeled_set(out_dir: Path, per_class: int, seed: int, size: int = 256) -> Path:
    """Write ``per_class`` PNG images of each class as ``out_dir/CLASS/NNNN.png`` (ImageFolder).

    Written into a temporary folder beside ``out_dir`` and renamed into place, so
    ``out_dir`` is either the old set or the complete new one.
    """
    from PIL import Image

    if not isinstance(per_class, int) or per_class < 1:
        raise UsageError(f"per_class {per_class!r}: expected an integer >= 1 (images per class)")
    if not isinstance(size, int) or size < 32:
        raise UsageError(f"size {size!r}: expected an integer >= 32 (pixels)")
    out_dir = Path(out_dir)
    parent = atomic.ensure_writable(out_dir.parent, "the labeled set's parent folder")
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=parent))
    try:
        os.chmod(work, 0o755)
        for k, name in enumerate(CLASSES):
            (work / name).mkdir()
            for i in range(per_class):
                Image.fromarray(render(k, seed, i, size)).save(work / name / f"{i:04d}.png")
        atomic.replace_dir(work, out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out_dir
