"""The server side of a classification student as ``tail.onnx`` (host side, torch).

::

    symbols (head.onnx's output, float32 [1, C, H, W])
      ─ + median ─ decoder (IGDN folded) ─ layer2 ─ layer3 ─ layer4 ─ avgpool ─ flatten ─ fc
      ─ logits [1, K]

Plain torch with torchvision's ResNet key names (Bottleneck v1.5: stride on the 3x3
conv, downsample = 1x1 conv + BatchNorm, eps 1e-5), loaded from the checkpoint's own
weights: sc2bench's ``splittable_resnet`` (``bottleneck_layer.*``, ``layer2.*``, ``fc.*``)
and the WACV'22 repository's ``BottleneckResNet`` (``backbone.bottleneck_layer.*``,
``backbone.layer2.*``, ``fc.*``). Widths and block counts come from the checkpoint.
"""

import re
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from sc2deploy.bundle import sha256_file
from sc2deploy.errors import CheckpointError, ExportError
from sc2deploy.export.decoder import DecoderTail
from sc2deploy.export.onnx_head import export_onnx
from sc2deploy.log import logger

INPUT = "symbols"
OUTPUT = "logits"
LAYERS = ("layer2", "layer3", "layer4")
BN_EPS = 1e-5
MAX_RELATIVE_DIFF = 1e-4  # |logits(onnxruntime) - logits(torch)| / max |logit|


class Bottleneck(nn.Module):
    """torchvision's ResNet Bottleneck (v1.5), eval only."""

    def __init__(self, conv1, bn1, conv2, bn2, conv3, bn3, downsample: Optional[nn.Module]):
        super().__init__()
        self.conv1, self.bn1, self.conv2, self.bn2 = conv1, bn1, conv2, bn2
        self.conv3, self.bn3, self.downsample = conv3, bn3, downsample
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ClassificationTail(nn.Module):
    """symbols → logits: dequantize + decoder, the remaining ResNet stages, the classifier."""

    def __init__(self, decoder: DecoderTail, stages: nn.Sequential, fc: nn.Linear):
        super().__init__()
        self.decoder, self.stages, self.fc = decoder, stages, fc
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))

    def forward(self, symbols: Tensor) -> Tensor:
        x = self.stages(self.decoder(symbols))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def tail_root(head_prefix: str) -> Optional[str]:
    """Where the ResNet stages sit, given the bottleneck's prefix (None: no tail there)."""
    if head_prefix.endswith("bottleneck_layer.") and "body." not in head_prefix:
        return head_prefix[:-len("bottleneck_layer.")]
    return None  # detection/segmentation backbones (backbone.body.*) and bare heads


def build_tail(state: Dict[str, Tensor], head_prefix: str,
               decoder: Optional[DecoderTail]) -> Optional[ClassificationTail]:
    """The classification tail of a full student checkpoint, or None when it has none."""
    root = tail_root(head_prefix)
    if decoder is None or root is None or f"{root}layer2.0.conv1.weight" not in state:
        return None
    fc_prefix = next((p for p in (f"{root}fc.", "fc.") if f"{p}weight" in state), None)
    if fc_prefix is None or any(f"{root}{layer}.0.conv1.weight" not in state
                                for layer in LAYERS):
        raise CheckpointError(f"incomplete classification tail under {root or 'the root'!r}: "
                              f"expected {', '.join(LAYERS)} and fc weights; found "
                              f"{_preview(state, root)}")
    blocks = [_block(state, f"{root}{layer}.{i}", first=i == 0)
              for layer in LAYERS for i in range(_count_blocks(state, f"{root}{layer}"))]
    weight, bias = state[f"{fc_prefix}weight"], state.get(f"{fc_prefix}bias")
    fc = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    fc.weight.data.copy_(weight)
    if bias is not None:
        fc.bias.data.copy_(bias)
    tail = ClassificationTail(decoder, nn.Sequential(*blocks), fc).eval()
    _check_widths(tail, decoder)
    return tail


def _count_blocks(state: Dict[str, Tensor], layer: str) -> int:
    pattern = re.compile(re.escape(layer) + r"\.(\d+)\.conv1\.weight$")
    indices = sorted(int(m.group(1)) for k in state if (m := pattern.match(k)))
    if indices != list(range(len(indices))):
        raise CheckpointError(f"{layer}: blocks {indices} are not numbered 0..N-1")
    return len(indices)


def _conv(state: Dict[str, Tensor], key: str, stride: int = 1) -> nn.Conv2d:
    weight = state.get(f"{key}.weight")
    if weight is None or weight.ndim != 4:
        raise CheckpointError(f"missing or malformed {key}.weight (expected a conv weight)")
    out_c, in_c, k, _ = weight.shape
    conv = nn.Conv2d(in_c, out_c, k, stride=stride, padding=k // 2, bias=False)
    conv.weight.data.copy_(weight)
    return conv


def _bn(state: Dict[str, Tensor], key: str) -> nn.BatchNorm2d:
    names = ("weight", "bias", "running_mean", "running_var")
    missing = [n for n in names if f"{key}.{n}" not in state]
    if missing:
        raise CheckpointError(f"{key}: BatchNorm lacks {', '.join(missing)}")
    bn = nn.BatchNorm2d(state[f"{key}.weight"].shape[0], eps=BN_EPS)
    for n in names:
        getattr(bn, n).data.copy_(state[f"{key}.{n}"])
    return bn.eval()


def _block(state: Dict[str, Tensor], key: str, first: bool) -> Bottleneck:
    """A Bottleneck; the first block of a stage downsamples (stride 2) and projects."""
    downsample = None
    stride = 1
    if f"{key}.downsample.0.weight" in state:
        stride = 2 if first else 1
        downsample = nn.Sequential(_conv(state, f"{key}.downsample.0", stride),
                                   _bn(state, f"{key}.downsample.1"))
    return Bottleneck(_conv(state, f"{key}.conv1"), _bn(state, f"{key}.bn1"),
                      _conv(state, f"{key}.conv2", stride), _bn(state, f"{key}.bn2"),
                      _conv(state, f"{key}.conv3"), _bn(state, f"{key}.bn3"), downsample)


def _check_widths(tail: ClassificationTail, decoder: DecoderTail) -> None:
    widths = [decoder.decoder[-1].out_channels]
    for block in tail.stages:
        if block.conv1.in_channels != widths[-1]:
            raise CheckpointError(f"tail: a block takes {block.conv1.in_channels} channels but "
                                  f"receives {widths[-1]}; the checkpoint's layers do not chain")
        widths.append(block.conv3.out_channels)
    if tail.fc.in_features != widths[-1]:
        raise CheckpointError(f"tail: fc takes {tail.fc.in_features} features but layer4 gives "
                              f"{widths[-1]}")


def _preview(state: Dict[str, Tensor], root: str) -> str:
    keys = [k for k in state if k.startswith(root) and "bottleneck" not in k][:6]
    return ", ".join(keys) or "no such keys"


def write_tail(work: Path, tail: ClassificationTail, symbols: Sequence[np.ndarray]) -> Dict:
    """Export ``tail.onnx`` and check onnxruntime against the torch tail on real symbols."""
    import onnxruntime as ort

    path = work / "tail.onnx"
    shape = [1, *symbols[0].shape[1:]]
    export_onnx(tail, shape, path, [OUTPUT], {"sc2deploy_part": "tail"}, INPUT)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst, top1_same, top5_overlap, classes = 0.0, 0, [], None
    with torch.no_grad():
        for s in symbols:
            x = s.astype(np.float32)
            ref = tail(torch.from_numpy(x)).numpy()
            got = session.run(None, {INPUT: x})[0]
            classes = int(got.shape[1])
            worst = max(worst, float(np.max(np.abs(ref - got)) / (np.max(np.abs(ref)) + 1e-12)))
            top1_same += int(np.argmax(ref) == np.argmax(got))
            k = min(5, classes)
            top5_overlap.append(len(set(np.argsort(-ref[0])[:k]) & set(np.argsort(-got[0])[:k])))
    if worst > MAX_RELATIVE_DIFF or top1_same != len(symbols):
        raise ExportError(f"tail.onnx differs from the torch tail: max relative difference "
                          f"{worst:.2e} (expected <= {MAX_RELATIVE_DIFF:g}), top-1 identical on "
                          f"{top1_same} of {len(symbols)} images; the bundle was not written")
    logger.info("  tail: onnxruntime vs torch max relative difference %.1e, top-1 identical on "
                "%d/%d images", worst, top1_same, len(symbols))
    return {"file": path.name, "sha256": sha256_file(path),
            "input": {"name": INPUT, "shape": shape, "dtype": "float32",
                      "definition": "head.onnx's output round(y - median); the tail adds the "
                                    "medians"},
            "output": {"name": OUTPUT, "shape": [1, classes], "dtype": "float32"},
            "outputs": f"logits of {classes} classes, in the checkpoint's class order",
            "layers": ["decoder", *LAYERS, "avgpool", "fc"],
            "verification": {"images": len(symbols), "max_relative_difference": worst,
                             "top1_identical": top1_same,
                             "top5_overlap_min": min(top5_overlap)}}


def no_tail_reason(family: str, head_prefix: str, decoder: Optional[DecoderTail]) -> str:
    """Why a checkpoint exports without a tail (said in the log and the manifest)."""
    if family != "fp":
        return "BQ students' tails (a BN/ReLU decoder, layer3-4, fc) are not exported yet"
    if decoder is None:
        return "the checkpoint has no decoder (a head-only file)"
    if tail_root(head_prefix) is None:
        return (f"bottleneck under {head_prefix!r}: not a classification student "
                "(detection/segmentation backbones keep their own heads)")
    return "the checkpoint has no layer2..layer4 and fc (a head + decoder file)"
