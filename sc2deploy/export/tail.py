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
BQ students' tails (three inputs: symbols, scale, zero point) are ``bq_tail``.
"""

import re
import warnings
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from sc2deploy import __version__
from sc2deploy.bundle import sha256_file
from sc2deploy.errors import CheckpointError, ExportError
from sc2deploy.export.decoder import DecoderTail
from sc2deploy.export.onnx_head import OPSET
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

    inputs = ((INPUT, "head.onnx's output round(y - median); the tail adds the medians"),)
    layers = ("decoder", *LAYERS, "avgpool", "fc")

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
    stages, fc = resnet_stages(state, root, LAYERS)
    tail = ClassificationTail(decoder, stages, fc).eval()
    check_widths(decoder.decoder[-1].out_channels, tail.stages, tail.fc)
    return tail


def resnet_stages(state: Dict[str, Tensor], root: str,
                  layers: Sequence[str]) -> Tuple[nn.Sequential, nn.Linear]:
    """The ResNet stages ``layers`` under ``root`` and the classifier ``fc``."""
    fc_prefix = next((p for p in (f"{root}fc.", "fc.") if f"{p}weight" in state), None)
    if fc_prefix is None or any(f"{root}{layer}.0.conv1.weight" not in state
                                for layer in layers):
        raise CheckpointError(f"incomplete classification tail under {root or 'the root'!r}: "
                              f"expected {', '.join(layers)} and fc weights; found "
                              f"{_preview(state, root)}")
    blocks = [_block(state, f"{root}{layer}.{i}", first=i == 0)
              for layer in layers for i in range(_count_blocks(state, f"{root}{layer}"))]
    weight, bias = state[f"{fc_prefix}weight"], state.get(f"{fc_prefix}bias")
    if weight.ndim != 2:
        raise CheckpointError(f"{fc_prefix}weight has shape {list(weight.shape)}, expected "
                              "[classes, features]")
    fc = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    fc.weight.data.copy_(weight)
    if bias is not None:
        fc.bias.data.copy_(bias)
    return nn.Sequential(*blocks), fc


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


def batch_norm(state: Dict[str, Tensor], key: str) -> nn.BatchNorm2d:
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
                                   batch_norm(state, f"{key}.downsample.1"))
    return Bottleneck(_conv(state, f"{key}.conv1"), batch_norm(state, f"{key}.bn1"),
                      _conv(state, f"{key}.conv2", stride), batch_norm(state, f"{key}.bn2"),
                      _conv(state, f"{key}.conv3"), batch_norm(state, f"{key}.bn3"), downsample)


def check_widths(width: int, stages: nn.Sequential, fc: nn.Linear) -> None:
    """Every block takes what the one before gives (``width``: the decoder's output)."""
    widths = [width]
    for block in stages:
        if block.conv1.in_channels != widths[-1]:
            raise CheckpointError(f"tail: a block takes {block.conv1.in_channels} channels but "
                                  f"receives {widths[-1]}; the checkpoint's layers do not chain")
        widths.append(block.conv3.out_channels)
    if fc.in_features != widths[-1]:
        raise CheckpointError(f"tail: fc takes {fc.in_features} features but the last stage "
                              f"gives {widths[-1]}")


def _preview(state: Dict[str, Tensor], root: str) -> str:
    keys = [k for k in state if k.startswith(root) and "bottleneck" not in k][:6]
    return ", ".join(keys) or "no such keys"


def reference_samples(reference: Mapping[str, np.ndarray], tail: nn.Module,
                      count: int) -> List[List[np.ndarray]]:
    """Per image (at most ``count``), the head's stored outputs that ``tail`` takes, float32."""
    arrays = [np.asarray(reference[name][:count], np.float32) for name, _ in tail.inputs]
    return [[a[i:i + 1] for a in arrays] for i in range(len(arrays[0]))]


def write_tail(work: Path, tail: nn.Module, samples: Sequence[Sequence[np.ndarray]],
               file_name: str = "tail.onnx") -> Dict:
    """Export ``work/file_name`` and check onnxruntime against the torch tail on real head
    outputs.

    ``samples``: per image, the arrays of ``tail.inputs`` in order (head.onnx's outputs).
    """
    import onnxruntime as ort

    path = work / file_name
    names = [name for name, _ in tail.inputs]
    shapes = {name: [1, *a.shape[1:]] for name, a in zip(names, samples[0])}
    batched = len(names) == 1
    _export(tail, shapes, path, batched)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst, top1_same, top5_overlap, classes, alone = 0.0, 0, [], None, []
    with torch.no_grad():
        for sample in samples:
            arrays = [np.asarray(a, np.float32) for a in sample]
            ref = tail(*(torch.from_numpy(a) for a in arrays)).numpy()
            got = session.run(None, dict(zip(names, arrays)))[0]
            alone.append(got)
            classes = int(got.shape[1])
            worst = max(worst, float(np.max(np.abs(ref - got)) / (np.max(np.abs(ref)) + 1e-12)))
            top1_same += int(np.argmax(ref) == np.argmax(got))
            k = min(5, classes)
            top5_overlap.append(len(set(np.argsort(-ref[0])[:k]) & set(np.argsort(-got[0])[:k])))
    # within MAX_RELATIVE_DIFF, a top-1 can only flip at a near tie (gap <= 2x that): the
    # count is reported, not gated, or a CPU's kernel order could refuse a correct tail
    if worst > MAX_RELATIVE_DIFF:
        raise ExportError(f"{path.name} differs from the torch tail: max relative difference "
                          f"{worst:.2e} (expected <= {MAX_RELATIVE_DIFF:g}), top-1 identical on "
                          f"{top1_same} of {len(samples)} images; the bundle was not written")
    if batched:
        _check_batch(session, names[0], samples, np.concatenate(alone), path)
    logger.info("  tail: onnxruntime vs torch max relative difference %.1e, top-1 identical on "
                "%d/%d images", worst, top1_same, len(samples))
    inputs = [{"name": name, "shape": shapes[name], "dtype": "float32", "definition": what}
              for name, what in tail.inputs]
    return {"file": path.name, "sha256": sha256_file(path), "input": inputs[0], "inputs": inputs,
            "output": {"name": OUTPUT, "shape": [1, classes], "dtype": "float32"},
            "batch": "free" if batched else "1",
            "outputs": f"logits of {classes} classes, in the checkpoint's class order",
            "layers": list(tail.layers),
            "verification": {"images": len(samples), "max_relative_difference": worst,
                             "top1_identical": top1_same,
                             "top5_overlap_min": min(top5_overlap)}}


def _check_batch(session, name: str, samples: Sequence[Sequence[np.ndarray]],
                 alone: np.ndarray, path: Path) -> None:
    """The images run as one batch give what each gave alone (``alone``: what the server
    batches)."""
    together = session.run(None, {name: np.concatenate([np.asarray(s[0], np.float32)
                                                        for s in samples])})[0]
    worst = float(np.max(np.abs(together - alone)) / (np.max(np.abs(alone)) + 1e-12))
    if together.shape != alone.shape or worst > MAX_RELATIVE_DIFF:
        raise ExportError(f"{path.name} run on {len(samples)} images as one batch differs from "
                          f"each image alone: shape {together.shape} vs {alone.shape}, max "
                          f"relative difference {worst:.2e} (expected <= "
                          f"{MAX_RELATIVE_DIFF:g}); the bundle was not written")
    logger.info("  tail: %d images as one batch vs one at a time max relative difference %.1e",
                len(samples), worst)


def _export(tail: nn.Module, shapes: Dict[str, list], path: Path, batched: bool) -> None:
    """An opset-17 graph with one input per head output, checked fully; ``batched``: the first
    dimension of the symbols and the logits is free (the server runs a batch at once)."""
    import onnx

    dummies = tuple(torch.zeros(*shape) for shape in shapes.values())
    free = {next(iter(shapes)): {0: "batch"}, OUTPUT: {0: "batch"}} if batched else None
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is ours
        torch.onnx.export(tail, dummies, str(path), dynamo=False, opset_version=OPSET,
                          input_names=list(shapes), output_names=[OUTPUT],
                          dynamic_axes=free, do_constant_folding=True)
    model = onnx.load(str(path))
    for key, value in {"producer": f"sc2deploy {__version__}", "sc2deploy_part": "tail"}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    onnx.checker.check_model(str(path), full_check=True)


def no_tail_reason(head_prefix: str, decoder: Optional[DecoderTail]) -> str:
    """Why a factorized-prior checkpoint exports without a tail (log and manifest)."""
    if decoder is None:
        return "the checkpoint has no decoder (a head-only file)"
    if tail_root(head_prefix) is None:
        return (f"bottleneck under {head_prefix!r}: not a classification student "
                "(detection/segmentation backbones keep their own heads)")
    return "the checkpoint has no layer2..layer4 and fc (a head + decoder file)"
