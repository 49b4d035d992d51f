"""The server side of a BQ student (torchdistill's ``custom_resnet50``) as ``tail.onnx``.

::

    symbols q, scale, zero_point (head.onnx's three outputs)
      ─ scale * (q - zero_point) ─ decoder ─ layer3 ─ layer4 ─ avgpool ─ flatten ─ fc ─ logits
    decoder: BN ─ ReLU ─ conv2 (p1) ─ BN ─ ReLU ─ conv2 (p1) ─ BN ─ ReLU ─ conv2 ─ BN ─ ReLU
             ─ conv2 ─ avgpool 2 (stride 1)

Key layout of ``CustomResNet`` over ``Bottleneck4ResNet152`` (bottleneck index 7):
``bottleneck.encoder.0-6`` (the head), ``bottleneck.decoder.{0,2,3,5,6,8,9,11}`` (BNs and
convs; ReLUs and the pool hold no weights), ``layer3.*``, ``layer4.*``, ``fc.*``, optionally
under DataParallel's ``module.``. Dequantization is torchdistill's, per tensor. Widths and
block counts come from the checkpoint.
"""

from typing import Dict, Optional

import torch
from torch import Tensor, nn

from sc2deploy.errors import CheckpointError
from sc2deploy.export.checkpoint import check_shapes
from sc2deploy.export.decoder import _conv
from sc2deploy.export.tail import batch_norm, check_widths, resnet_stages

LAYERS = ("layer3", "layer4")
CONVS = {2: 1, 5: 1, 8: 0, 11: 0}  # decoder index of each 2x2 conv: its padding
BATCH_NORMS = (0, 3, 6, 9)  # decoder index of the BN in front of each conv


class BQTail(nn.Module):
    """(symbols, scale, zero_point) → logits: dequantize, decoder, layer3-4, classifier."""

    inputs = (("symbols", "head.onnx's symbols q: uint8 values 0..255 as float32"),
              ("scale", "head.onnx's scale (max(y) - min(y)) / 255, float32 [1]"),
              ("zero_point", "head.onnx's zero point, an integer as float32 [1]; the tail "
                             "computes scale * (q - zero_point)"))
    layers = ("dequantize", "decoder", *LAYERS, "avgpool", "fc")

    def __init__(self, decoder: nn.Sequential, stages: nn.Sequential, fc: nn.Linear):
        super().__init__()
        self.decoder, self.stages, self.fc = decoder, stages, fc
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))

    def forward(self, symbols: Tensor, scale: Tensor, zero_point: Tensor) -> Tensor:
        x = self.stages(self.decoder(scale * (symbols - zero_point)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _root(head_prefix: str) -> str:
    return head_prefix[:-len("bottleneck.")] if head_prefix.endswith("bottleneck.") else ""


def build_bq_tail(state: Dict[str, Tensor], head_prefix: str,
                  channels: int) -> Optional[BQTail]:
    """The tail of a full BQ checkpoint (``head_prefix``: where ``encoder.0`` was found), or
    None when it has no decoder or no ``layer3``."""
    root, dec = _root(head_prefix), f"{head_prefix}decoder."
    if f"{dec}2.weight" not in state or f"{root}layer3.0.conv1.weight" not in state:
        return None
    for i in CONVS:
        w = state.get(f"{dec}{i}.weight")
        if w is None or w.ndim != 4:
            raise CheckpointError(f"incomplete BQ decoder: {dec}{i}.weight is missing or not a "
                                  "conv weight; expected convs at decoder.2, .5, .8, .11 and "
                                  "BatchNorms at decoder.0, .3, .6, .9")
    widths = [channels] + [int(state[f"{dec}{i}.weight"].shape[0]) for i in CONVS]
    expected = {}
    for n, (i, bn) in enumerate(zip(CONVS, BATCH_NORMS)):
        expected[f"{dec}{i}.weight"] = (widths[n + 1], widths[n], 2, 2)
        expected.update({f"{dec}{bn}.{p}": (widths[n],) for p in
                         ("weight", "bias", "running_mean", "running_var")})
    check_shapes(state, expected, f"the BQ decoder of the {channels}-channel bottleneck")
    layers = []
    for i, bn in zip(CONVS, BATCH_NORMS):
        layers += [batch_norm(state, f"{dec}{bn}"), nn.ReLU(),
                   _conv(state, f"{dec}{i}", CONVS[i])]
    decoder = nn.Sequential(*layers, nn.AvgPool2d(2, stride=1))
    stages, fc = resnet_stages(state, root, LAYERS)
    check_widths(widths[-1], stages, fc)
    return BQTail(decoder, stages, fc).eval()


def bq_no_tail_reason(state: Dict[str, Tensor], head_prefix: str) -> str:
    """Why a BQ checkpoint exports without a tail (log and manifest)."""
    if f"{head_prefix}decoder.2.weight" not in state:
        return "the checkpoint has no decoder (a head-only file)"
    return "the checkpoint has no layer3, layer4 and fc (a head + decoder file)"
