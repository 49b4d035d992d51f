"""Independent reference bottlenecks built from CompressAI's own modules, and checkpoint writers."""

import argparse

import numpy as np
import torch
from torch import nn

import compressai_ref

MATRIX_NAMINGS = ("matrices.{i}", "_matrices.{i}", "_matrix{i}")
TABLE_BUFFERS = ("_quantized_cdf", "_offset", "_cdf_length")


def compressai_bottleneck(channels: int = 24, seed: int = 0, decoder: bool = False,
                          update: bool = True) -> nn.Module:
    """An FPBasedResNetBottleneck-style head with CompressAI's GDN1 and EntropyBottleneck.

    Parameters are randomized (deterministically per seed) so the latent spreads
    over several symbols and the priors differ per channel; ``update()`` fills
    the tables unless ``update=False``. Works with whichever CompressAI
    ``compressai_ref.load()`` finds (1.2.8, or 1.1.9 in a subprocess).
    """
    with torch.random.fork_rng():  # CompressAI initializes biases from the global generator
        torch.manual_seed(seed)
        return _compressai_bottleneck(channels, seed, decoder, update)


def _density_parameters(eb: nn.Module):
    """matrices, biases and factors of an EntropyBottleneck of either naming generation."""
    if hasattr(eb, "matrices"):
        return eb.matrices, eb.biases, eb.factors
    layers = len(eb.filters) + 1
    return ([getattr(eb, f"_matrix{i}") for i in range(layers)],
            [getattr(eb, f"_bias{i}") for i in range(layers)],
            [getattr(eb, f"_factor{i}") for i in range(layers - 1)])


def _compressai_bottleneck(channels: int, seed: int, decoder: bool, update: bool) -> nn.Module:
    entropy, gdn, _ = compressai_ref.load()
    gen = torch.Generator().manual_seed(seed)
    n = channels
    m = nn.Module()
    m.encoder = nn.Sequential(
        nn.Conv2d(3, 4 * n, 5, 2, 2, bias=False), gdn.GDN1(4 * n),
        nn.Conv2d(4 * n, 2 * n, 5, 2, 2, bias=False), gdn.GDN1(2 * n),
        nn.Conv2d(2 * n, n, 2, 1, 0, bias=False))
    m.entropy_bottleneck = entropy.EntropyBottleneck(n)
    layers = list(m.encoder)
    if decoder:  # sc2bench's decoder layout (conv biases on the last two convs)
        m.decoder = nn.Sequential(
            nn.Conv2d(n, 4 * n, 2, 1, 1, bias=False), gdn.GDN1(4 * n, inverse=True),
            nn.Conv2d(4 * n, 2 * n, 2, 1, 0), gdn.GDN1(2 * n, inverse=True),
            nn.Conv2d(2 * n, 2 * n, 2, 1, 1))
        layers += list(m.decoder)
    with torch.no_grad():
        for layer in layers:
            if isinstance(layer, nn.Conv2d):
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
