"""The bottleneck's decoder (server side) as ONNX, for ``sc2deploy profile-server``.

Layout of the factorized-prior students (sc2bench ``FPBasedResNetBottleneck``)::

    symbols ─ + median ─ conv2 (p1) ─ IGDN1 ─ conv2 (p0) ─ IGDN1 ─ conv2 (p1) ─ features

A latent one stride coarser (encoder.4 conv4/2, the bundled demo students) is undone by a
transposed conv4/2 at decoder.0 (weight [N, C, 4, 4], PyTorch's layout for transposed convs).

Channel counts come from the checkpoint; a head-only checkpoint has no decoder.
"""

from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from torch import Tensor, nn

from sc2deploy.bundle import sha256_file
from sc2deploy.errors import CheckpointError, ExportError
from sc2deploy.export.checkpoint import check_shapes
from sc2deploy.export.heads import _fold_gdn, _gdn_shapes
from sc2deploy.export.onnx_head import export_onnx
from sc2deploy.log import logger

INPUT = "symbols"
OUTPUT = "features"
PADDINGS = (1, 0, 1)  # decoder.0, decoder.2, decoder.4


class DecoderTail(nn.Module):
    """Dequantize (symbols + median) and run the folded decoder."""

    def __init__(self, decoder: nn.Sequential, medians: Tensor):
        super().__init__()
        self.decoder = decoder
        self.register_buffer("medians", medians.detach().float().reshape(1, -1, 1, 1))

    def forward(self, symbols: Tensor) -> Tensor:
        return self.decoder(symbols + self.medians)


def _conv(state: Dict[str, Tensor], prefix: str, padding: int) -> nn.Conv2d:
    weight = state[f"{prefix}.weight"]
    out_c, in_c, k, _ = weight.shape
    bias = state.get(f"{prefix}.bias")
    conv = nn.Conv2d(in_c, out_c, k, stride=1, padding=padding, bias=bias is not None)
    conv.weight.data.copy_(weight)
    if bias is not None:
        conv.bias.data.copy_(bias)
    return conv


def _upsampling(state: Dict[str, Tensor], prefix: str) -> nn.ConvTranspose2d:
    weight = state[f"{prefix}.weight"]
    in_c, out_c, k, _ = weight.shape
    conv = nn.ConvTranspose2d(in_c, out_c, k, stride=2, padding=1, bias=False)
    conv.weight.data.copy_(weight)
    return conv


def build_decoder(state: Dict[str, Tensor], medians: np.ndarray) -> Optional[DecoderTail]:
    """The decoder of a normalized fp bottleneck state, or None for head-only checkpoints."""
    if "decoder.0.weight" not in state:
        return None
    n = int(medians.size)
    w0, w2, w4 = (state.get(f"decoder.{i}.weight") for i in (0, 2, 4))
    if any(w is None or w.ndim != 4 for w in (w0, w2, w4)):
        raise CheckpointError("incomplete decoder: expected decoder.{0,2,4}.weight (convs) and "
                              "decoder.{1,3} (inverse GDN)")
    upsample = w0.shape[-1] == 4  # a transposed conv4/2: [N, C, 4, 4]
    c1 = int(w0.shape[1] if upsample else w0.shape[0])
    c2, c3 = int(w2.shape[0]), int(w4.shape[0])
    first = (n, c1, 4, 4) if upsample else (c1, n, 2, 2)
    expected = {"decoder.0.weight": first, "decoder.2.weight": (c2, c1, 2, 2),
                "decoder.4.weight": (c3, c2, 2, 2),
                **_gdn_shapes("decoder.1", c1), **_gdn_shapes("decoder.3", c2)}
    check_shapes(state, expected, f"the decoder of the {n}-channel bottleneck")
    layers = []
    for i, padding in zip((0, 2, 4), PADDINGS):
        layers.append(_upsampling(state, "decoder.0") if i == 0 and upsample else
                      _conv(state, f"decoder.{i}", padding))
        if i < 4:
            gdn = _fold_gdn(state, f"decoder.{i + 1}")
            gdn.inverse = True
            layers.append(gdn)
    return DecoderTail(nn.Sequential(*layers), torch.from_numpy(medians)).eval()


def write_decoder(work: Path, decoder: DecoderTail, symbols: List[np.ndarray]) -> Dict:
    """Export ``decoder.onnx`` and check onnxruntime against torch on real symbols."""
    import onnxruntime as ort

    path = work / "decoder.onnx"
    shape = [1, *symbols[0].shape[1:]]
    export_onnx(decoder, shape, path, [OUTPUT], {"sc2deploy_part": "decoder"}, INPUT)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst, out_shape = 0.0, None
    with torch.no_grad():
        for s in symbols:
            x = s.astype(np.float32)
            ref = decoder(torch.from_numpy(x)).numpy()
            got = session.run(None, {INPUT: x})[0]
            out_shape = list(got.shape)
            worst = max(worst, float(np.max(np.abs(ref - got)) / (np.max(np.abs(ref)) + 1e-12)))
    if worst > 1e-4:
        raise ExportError(f"decoder.onnx differs from torch by {worst:.2e} (relative); expected "
                          "<= 1e-4; the decoder was not written")
    logger.info("  decoder: onnxruntime vs torch max relative difference %.1e over %d latents",
                worst, len(symbols))
    return {"file": path.name, "sha256": sha256_file(path), "input": {"name": INPUT,
            "shape": shape, "dtype": "float32"}, "output": {"name": OUTPUT, "shape": out_shape},
            "max_relative_difference": worst, "latents_checked": len(symbols)}
