"""Encode an image into a container with a bundle's head and prior, and decode it back.

    python examples/codec_roundtrip.py [OUT_DIR]      (default: a new temporary folder)

The device side runs the head (ONNX, no torch) and range-codes its integer latent with the
bundle's prior into a container (docs/bitstream.md); the server side decodes it, losslessly.
Runs offline in about 15 s on 2 cores.
"""

import sys
import tempfile
from pathlib import Path

import numpy as np

from sc2deploy.bundle import Bundle
from sc2deploy.codec import LatentCodec
from sc2deploy.export import ExportOptions, export_bundle
from sc2deploy.preprocess import sample_images
from sc2deploy.targets import load_runner


def main(out: Path) -> None:
    # Host: export the bundled demo student (torch; as `sc2deploy export demo --out ...`).
    exported = export_bundle(ExportOptions(model="demo", out=out / "demo-bundle", force=True))

    # Device: open the bundle (its hashes are checked), preprocess an image as in training,
    # run the head with onnxruntime: int32 symbols [1, C, H, W].
    bundle = Bundle.open(exported.path)
    image = sample_images()[0]
    with load_runner(bundle, "onnx") as runner:
        latent = runner.infer(bundle.preprocessing()(image))[0]

    # Range-code the latent with the bundle's prior: one container (16-byte header + payload).
    # coder="c" is the portable C coder; "constriction" writes the same bytes where installed.
    codec = LatentCodec(bundle.prior(), coder="c")
    container = out / f"{image.stem}.s2c"
    container.write_bytes(codec.encode(latent))

    # Server: the same bundle decodes the container back to the very same integers.
    decoded = LatentCodec(Bundle.open(exported.path).prior()).decode(container.read_bytes())
    if not np.array_equal(decoded, latent):
        raise SystemExit(f"round trip failed: {int((decoded != latent).sum())} symbols differ")
    print(f"{image.name}: latent {list(latent.shape)} -> {container} "
          f"({container.stat().st_size} bytes, {latent.size} symbols)")
    print("round trip OK: the decoded latent equals the encoded one")
    print(f"the same from the shell: sc2deploy encode {exported.path} {image} -o DIR; "
          f"sc2deploy decode {exported.path} DIR/{image.stem}.s2c -o latent.npy")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1
         else Path(tempfile.mkdtemp(prefix="sc2deploy-example.")))
