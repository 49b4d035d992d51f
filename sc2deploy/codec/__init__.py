"""Room ``codec``: lossless range coding of latents (torch-free).

Two implementations of one bitstream: constriction where it installs, and
sc2deploy's portable C coder (byte-identical) everywhere else.
"""

from sc2deploy.codec.backends import CODERS, constriction_available, raw_decode, raw_encode
from sc2deploy.codec.latent import LatentCodec

__all__ = ["CODERS", "LatentCodec", "constriction_available", "raw_decode", "raw_encode"]
