"""Independent reference bottlenecks built from CompressAI's own modules, and checkpoint writers."""

import argparse

import numpy as np
import torch
from torch import nn

from tests.helpers import compressai_ref

MATRIX_NAMINGS = ("matrices.{i}", "_matrices.{i}", "_matrix{i}")
TABLE_BUFFERS = ("_quantized_cdf", "_offset", "_cdf_length")


def compressai_bottleneck(channels: int = 24, seed: int = 0, decoder: bool = False,
                          update: bool = True, coarse: bool = False) -> nn.Module:
    """An FPBasedResNetBottleneck-style head with CompressAI's GDN1 and EntropyBottleneck.

    Parameters are randomized (deterministically per seed) so the latent spreads
    over several symbols and the priors differ per channel; ``update()`` fills
    the tables unless ``update=False``. Works with whichever CompressAI
    ``compressai_ref.load()`` finds (1.2.8, or 1.1.9 in a subprocess). ``coarse``: the
    bundled demo students' layout, a latent one stride coarser (encoder.4 conv4/2, decoder.0
    a transposed conv4/2).
    """
    with torch.random.fork_rng():  # CompressAI initializes biases from the global generator
        torch.manual_seed(seed)
        return _compressai_bottleneck(channels, seed, decoder, update, coarse)


def _density_parameters(eb: nn.Module):
    """matrices, biases and factors of an EntropyBottleneck of either naming generation."""
    if hasattr(eb, "matrices"):
        return eb.matrices, eb.biases, eb.factors
    layers = len(eb.filters) + 1
    return ([getattr(eb, f"_matrix{i}") for i in range(layers)],
            [getattr(eb, f"_bias{i}") for i in range(layers)],
            [getattr(eb, f"_factor{i}") for i in range(layers - 1)])


def _compressai_bottleneck(channels: int, seed: int, decoder: bool, update: bool,
                           coarse: bool) -> nn.Module:
    entropy, gdn, _ = compressai_ref.load()
    gen = torch.Generator().manual_seed(seed)
    n = channels
    m = nn.Module()
    m.encoder = nn.Sequential(
        nn.Conv2d(3, 4 * n, 5, 2, 2, bias=False), gdn.GDN1(4 * n),
        nn.Conv2d(4 * n, 2 * n, 5, 2, 2, bias=False), gdn.GDN1(2 * n),
        nn.Conv2d(2 * n, n, 4, 2, 1, bias=False) if coarse else
        nn.Conv2d(2 * n, n, 2, 1, 0, bias=False))
    m.entropy_bottleneck = entropy.EntropyBottleneck(n)
    layers = list(m.encoder)
    if decoder:  # sc2bench's decoder layout (conv biases on the last two convs)
        m.decoder = nn.Sequential(
            nn.ConvTranspose2d(n, 4 * n, 4, 2, 1, bias=False) if coarse else
            nn.Conv2d(n, 4 * n, 2, 1, 1, bias=False), gdn.GDN1(4 * n, inverse=True),
            nn.Conv2d(4 * n, 2 * n, 2, 1, 0), gdn.GDN1(2 * n, inverse=True),
            nn.Conv2d(2 * n, 2 * n, 2, 1, 1))
        layers += list(m.decoder)
    with torch.no_grad():
        for layer in layers:
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen)
                                   * (3.0 / layer.weight[0].numel()) ** 0.5)
                if layer.bias is not None:
                    layer.bias.copy_(0.1 * torch.randn(layer.bias.shape, generator=gen))
            else:
                c = layer.beta.shape[0]
                beta = 0.5 + torch.rand(c, generator=gen)
                gamma = 0.1 * torch.eye(c) + 0.01 * torch.rand(c, c, generator=gen)
                layer.beta.copy_(layer.beta_reparam.init(beta))
                layer.gamma.copy_(layer.gamma_reparam.init(gamma))
        eb = m.entropy_bottleneck
        for group in _density_parameters(eb):
            for p in group:
                p.add_(0.3 * torch.randn(p.shape, generator=gen))
        median = torch.rand(n, generator=gen) * 2 - 1
        spread = 3 + 10 * torch.rand(n, generator=gen)
        eb.quantiles.copy_(torch.stack([median - spread, median, median + spread], -1)[:, None])
        if update:
            eb.update(force=True)
    return m.eval()


def reference_symbols(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """CompressAI's own symbols: ``quantize(encoder(x), "symbols", medians)``."""
    eb = m.entropy_bottleneck
    with torch.no_grad():
        return eb.quantize(m.encoder(x), "symbols", eb._get_medians())


def reference_pre_round(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The values CompressAI rounds into symbols: ``encoder(x) - medians``."""
    eb = m.entropy_bottleneck
    with torch.no_grad():
        return m.encoder(x) - eb._get_medians()


def rename_entropy_keys(state: dict, naming: str) -> dict:
    """Rename matrices/biases/factors to another CompressAI generation's names."""
    singular = {"matrices": "matrix", "biases": "bias", "factors": "factor"}
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if "entropy_bottleneck" in parts:
            at = parts.index("entropy_bottleneck")
            tail = parts[at + 1:]
            if len(tail) == 2 and tail[0] in singular:
                group, i = tail
                if naming == "_matrices.{i}":
                    tail = [f"_{group}", i]
                elif naming == "_matrix{i}":
                    tail = [f"_{singular[group]}{i}"]
                parts = parts[:at + 1] + tail
        out[".".join(parts)] = value
    return out


def write_checkpoint(path, module: nn.Module, prefix: str, naming: str = "matrices.{i}",
                     torchdistill: bool = True, tail_keys: bool = True) -> None:
    """Save ``module`` in a published layout: key prefix, naming generation, wrapper."""
    state = {prefix + k: v for k, v in module.state_dict().items()}
    state = rename_entropy_keys(state, naming)
    if tail_keys:
        state["backbone.layer2.0.conv1.weight"] = torch.zeros(128, 256, 1, 1)
        state["fc.weight"] = torch.zeros(10, 2048)
    if torchdistill:
        obj = {"model": state, "optimizer": {"state": {}, "param_groups": [{"lr": 0.1}]},
               "best_value": 0.74, "lr_scheduler": {"last_epoch": 3},
               "args": argparse.Namespace(config="configs/student.yaml", seed=None)}
    else:
        obj = state
    torch.save(obj, path)


def write_unupdated_reference(ckpt, tables, prefix: str, channels: int, seed: int) -> None:
    """Save a never-``update()``d bottleneck (empty table buffers), then its own tables.

    The checkpoint keeps the names of the CompressAI that runs this (1.1.9:
    ``_matrix{i}``); ``tables`` (.npz) holds that version's ``update()`` result.
    """
    m = compressai_bottleneck(channels=channels, seed=seed, update=False)
    eb = m.entropy_bottleneck
    assert all(getattr(eb, name).numel() == 0 for name in TABLE_BUFFERS)
    write_checkpoint(ckpt, m, prefix)
    with torch.no_grad():
        eb.update(force=True)
    np.savez(tables, quantized_cdf=eb._quantized_cdf.numpy(), offsets=eb._offset.numpy(),
             cdf_lengths=eb._cdf_length.numpy(), medians=eb.quantiles[:, 0, 1].detach().numpy())


class RefBottleneck(nn.Module):
    """torchvision's ResNet Bottleneck, transcribed for the tests (expansion 4)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        width = planes
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes * 4))

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


def _add_stages(m: nn.Module, names, inplanes: int, planes, blocks, classes: int) -> None:
    """ResNet stages ``names`` (torchvision Bottlenecks, stride 2 first), avgpool and fc."""
    for name, p, n in zip(names, planes, blocks):
        layers = [RefBottleneck(inplanes, p, 2)] + [RefBottleneck(p * 4, p) for _ in range(n - 1)]
        inplanes = p * 4
        setattr(m, name, nn.Sequential(*layers))
    m.avgpool = nn.AdaptiveAvgPool2d((1, 1))
    m.fc = nn.Linear(inplanes, classes)


def classification_student(channels: int = 8, seed: int = 3, planes=(4, 8, 16),
                           blocks=(2, 2, 1), classes: int = 10) -> nn.Module:
    """A CompressAI bottleneck with decoder + ResNet layer2..4 + fc, as sc2bench names them."""
    m = compressai_bottleneck(channels=channels, seed=seed, decoder=True)
    gen = torch.Generator().manual_seed(seed + 100)
    _add_stages(m, ("layer2", "layer3", "layer4"), m.decoder[-1].out_channels, planes, blocks,
                classes)
    with torch.no_grad():
        for module in [*m.layer2.modules(), *m.layer3.modules(), *m.layer4.modules(), m.fc]:
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen)
                                    * (2.0 / fan_in) ** 0.5)
                if getattr(module, "bias", None) is not None:
                    module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=gen))
            elif isinstance(module, nn.BatchNorm2d):
                c = module.num_features
                module.weight.copy_(0.5 + torch.rand(c, generator=gen))
                module.bias.copy_(0.1 * torch.randn(c, generator=gen))
    _settle_batch_norm(m, gen)
    return m.eval()


def _settle_batch_norm(m: nn.Module, gen: torch.Generator) -> None:
    """Running statistics from a few inputs, as training leaves them, so activations stay at
    unit scale; then fc is scaled to logits of a trained classifier's size (std ~4)."""
    stages = nn.Sequential(m.layer2, m.layer3, m.layer4)
    for bn in stages.modules():
        if isinstance(bn, nn.BatchNorm2d):
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average
    eb = m.entropy_bottleneck
    with torch.no_grad():
        x = torch.randn(4, 3, 96, 96, generator=gen)
        features = m.decoder(eb.dequantize(eb.quantize(m.encoder(x), "symbols",
                                                        eb._get_medians()), eb._get_medians()))
        stages.train()
        stages(features)
        stages.eval()
        logits = m.fc(torch.flatten(m.avgpool(stages(features)), 1))
        m.fc.weight.mul_(4.0 / float(logits.std()))
        m.fc.bias.mul_(4.0 / float(logits.std()))


def reference_logits(m: nn.Module, symbols: torch.Tensor) -> torch.Tensor:
    """The upstream server path: dequantize(symbols, medians) → decoder → layer2..4 → fc."""
    eb = m.entropy_bottleneck
    with torch.no_grad():
        y = eb.dequantize(symbols, eb._get_medians())
        z = m.layer4(m.layer3(m.layer2(m.decoder(y))))
        return m.fc(torch.flatten(m.avgpool(z), 1))


def write_student(path, m: nn.Module, layout: str) -> None:
    """Save a classification student as sc2bench (``bottleneck_layer.``, ``layer2.``, ``fc.``)
    or the WACV'22 repository (``backbone.bottleneck_layer.``, ``backbone.layer2.``, ``fc.``)."""
    body = {k: v for k, v in m.state_dict().items() if k.split(".")[0] in
            ("encoder", "entropy_bottleneck", "decoder")}
    rest = {k: v for k, v in m.state_dict().items() if k.split(".")[0] in
            ("layer2", "layer3", "layer4", "fc")}
    root = {"sc2bench": "", "wacv22": "backbone."}[layout]
    state = {f"{root}bottleneck_layer.{k}": v for k, v in body.items()}
    state.update({(k if k.startswith("fc.") else root + k): v for k, v in rest.items()})
    torch.save({"model": state, "args": argparse.Namespace(seed=None)}, path)


def bq_student(channels: int = 6, seed: int = 4, width: int = 16, planes=(8, 16),
               blocks=(2, 1), classes: int = 10) -> nn.Module:
    """A BQ student as torchdistill's ``custom_resnet50`` saves it (``bottleneck.encoder``,
    ``bottleneck.decoder``, ``layer3``, ``layer4``, ``fc``); ``width`` replaces its 512."""
    gen = torch.Generator().manual_seed(seed)
    m = nn.Module()
    m.bottleneck = nn.Module()
    m.bottleneck.encoder = nn.Sequential(
        nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
        nn.Conv2d(64, channels, 2, 2, 1, bias=False))
    m.bottleneck.decoder = nn.Sequential(
        nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
        nn.Conv2d(channels, width, 2, 1, 1, bias=False), nn.BatchNorm2d(width),
        nn.ReLU(inplace=True), nn.Conv2d(width, width, 2, 1, 1, bias=False),
        nn.BatchNorm2d(width), nn.ReLU(inplace=True), nn.Conv2d(width, width, 2, 1, bias=False),
        nn.BatchNorm2d(width), nn.ReLU(inplace=True), nn.Conv2d(width, width, 2, 1, bias=False),
        nn.AvgPool2d(2, 1))
    _add_stages(m, ("layer3", "layer4"), width, planes, blocks, classes)
    with torch.no_grad():
        for module in m.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen)
                                    * (2.0 / module.weight[0].numel()) ** 0.5)
                if module.bias is not None:
                    module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=gen))
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.copy_(0.5 + torch.rand(module.num_features, generator=gen))
                module.bias.copy_(0.1 * torch.randn(module.num_features, generator=gen))
                module.momentum = None  # running statistics: the average over the batch below
        m.train()
        x = torch.randn(8, 3, 64, 64, generator=gen)
        y = m.bottleneck.encoder(x)
        m.layer4(m.layer3(m.bottleneck.decoder(y)))  # fills the running statistics
        m.eval()
        logits = torch.cat([bq_reference_logits(m, *torchdistill_quantize(m.bottleneck.encoder(
            x[i:i + 1]))) for i in range(len(x))])
        spread = 4.0 / float((logits - logits.mean(0)).std())  # images differ, as when trained
        m.fc.bias.sub_(logits.mean(0)).mul_(spread)
        m.fc.weight.mul_(spread)
    return m


def torchdistill_quantize(y: torch.Tensor):
    """torchdistill's per-tensor min/max uint8 quantization (``quantize_tensor``), written from
    its formula: (q, scale, zero_point)."""
    lo, hi = y.min(), y.max()
    scale = (hi - lo) / 255.0
    zero_point = int(min(max(float(-lo / scale), 0.0), 255.0))
    return (zero_point + y / scale).clamp(0, 255).round(), scale, zero_point


def bq_reference_logits(m: nn.Module, q, scale, zero_point) -> torch.Tensor:
    """The upstream server path: scale * (q - zero_point) → decoder → layer3 → layer4 → fc."""
    with torch.no_grad():
        x = m.bottleneck.decoder(torch.as_tensor(scale) * (torch.as_tensor(q).float()
                                                           - torch.as_tensor(zero_point)))
        return m.fc(torch.flatten(m.avgpool(m.layer4(m.layer3(x))), 1))


def bq_head_state(channels: int, seed: int = 0) -> dict:
    """A random BQ head state dict (``encoder.*``, as the checkpoint's ``bottleneck.*``)."""
    gen = torch.Generator().manual_seed(seed)
    state = {"encoder.0.weight": torch.randn(64, 3, 7, 7, generator=gen) * 0.1,
             "encoder.6.weight": torch.randn(channels, 64, 2, 2, generator=gen) * 0.2}
    for bn in ("encoder.1", "encoder.4"):
        state[f"{bn}.weight"] = 1 + 0.1 * torch.randn(64, generator=gen)
        state[f"{bn}.bias"] = 0.1 * torch.randn(64, generator=gen)
        state[f"{bn}.running_mean"] = 0.1 * torch.randn(64, generator=gen)
        state[f"{bn}.running_var"] = 1 + torch.rand(64, generator=gen)
        state[f"{bn}.num_batches_tracked"] = torch.tensor(100)
    return state
