"""Images → containers with a bundle: preprocess, run the head, range-code (torch-free)."""

from pathlib import Path
from typing import Iterator, Optional, Sequence, Tuple

from sc2deploy.bundle import Bundle
from sc2deploy.codec.latent import LatentCodec
from sc2deploy.errors import UsageError
from sc2deploy.targets import load_runner


def latent_codec(bundle: Bundle, coder: Optional[str] = None) -> LatentCodec:
    prior = bundle.prior()
    if prior is None:
        raise UsageError(f"bundle {bundle.path} ({bundle.model['name']}) has no entropy model; "
                         "BQ latents are sent as uint8 (see sc2deploy.measure.baselines)")
    return LatentCodec(prior, coder)


def encode_images(bundle: Bundle, images: Sequence[Path], target: str = "onnx",
                  coder: Optional[str] = None, preprocess: str = "exact"
                  ) -> Iterator[Tuple[Path, bytes]]:
    """Yield (image, container bytes) for each image (``preprocess``: exact or fast)."""
    from sc2deploy.preprocess import preprocessor

    codec = latent_codec(bundle, coder)
    pre = preprocessor(bundle.preprocessing(), preprocess)
    with load_runner(bundle, target) as runner:
        for path in images:
            yield Path(path), codec.encode(runner.infer(pre(path))[0])
