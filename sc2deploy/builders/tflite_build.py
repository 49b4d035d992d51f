"""Host-side builders of the TFLite targets with litert-torch.

The converter drops the reciprocal of ``x * (1 / conv(|x|))`` (found while
building this target: symbols were wrong); the converted copy of the head
computes GDN as ``x / conv(|x|)``, which converts faithfully. The gate then
measures the result against the untouched torch head.
"""

import copy
import io
import contextlib
from pathlib import Path
from typing import Dict, Tuple

import torch
from torch import nn

from sc2deploy.bundle import Bundle
from sc2deploy.errors import UsageError
from sc2deploy.export.heads import head_from_arrays
from sc2deploy.export.layers import FoldedGDN1


class _FloatConv(nn.Conv2d):
    """Marker type: convs left in float by the int8 quantizer."""


def convertible_head(bundle: Bundle, keep_float=()) -> nn.Module:
    """The bundle's torch head with GDN as a division (and marked float layers)."""
    module = copy.deepcopy(head_from_arrays(bundle.model["family"], bundle.torch_head_arrays()))
    for i, layer in enumerate(module.encoder):
        if isinstance(layer, FoldedGDN1):
            layer.divide = True
        if isinstance(layer, nn.Conv2d) and (str(i) in keep_float or "Conv" in keep_float):
            float_conv = _FloatConv(layer.in_channels, layer.out_channels, layer.kernel_size,
                                    layer.stride, layer.padding, bias=layer.bias is not None)
            float_conv.load_state_dict(layer.state_dict())
            module.encoder[i] = float_conv
    return module.eval()


def _sample(bundle: Bundle) -> Tuple[torch.Tensor]:
    return (torch.zeros(*bundle.model["input"]["shape"]),)


def _export(edge, stage: Path, name: str) -> Path:
    path = stage / name
    edge.export(str(path))
    return path


@contextlib.contextmanager
def _quiet():
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def build_fp32(bundle: Bundle, options, calibration, stage: Path) -> Tuple[Path, Dict]:
    import litert_torch

    with _quiet():
        edge = litert_torch.convert(convertible_head(bundle), _sample(bundle))
        return _export(edge, stage, "head.tflite"), {"gdn": "division"}


def build_fp16(bundle: Bundle, options, calibration, stage: Path) -> Tuple[Path, Dict]:
    import litert_torch
    from litert_torch.generative.quantize import quant_recipes

    with _quiet():
        edge = litert_torch.convert(convertible_head(bundle), _sample(bundle),
                                    quant_config=quant_recipes.full_fp16_recipe())
        return _export(edge, stage, "head-fp16.tflite"), {"gdn": "division",
                                                          "recipe": "full_fp16"}


def build_int8(bundle: Bundle, options, calibration, stage: Path) -> Tuple[Path, Dict]:
    """PT2E int8 (symmetric weights; activations static-calibrated or dynamic), or int8
    weights only with fp32 activations (activations "float"): what the tflite-int8 record
    accepts.

    ``keep_float`` names encoder layer indices (or "Conv") left in float.
    """
    import litert_torch
    from litert_torch.quantize.pt2e_quantizer import (PT2EQuantizer,
                                                      get_symmetric_quantization_config)
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    cfg = options.int8
    if cfg.activations == "float":
        return _build_weight_only(bundle, cfg, stage)
    dynamic = cfg.activations == "dynamic"
    module = convertible_head(bundle, cfg.keep_float)
    quantizer = PT2EQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=cfg.per_channel,
                                          is_dynamic=dynamic))
    # torch >= 2.13 records module types by qualified name: match the marker by name.
    quantizer.set_module_type(f"{_FloatConv.__module__}.{_FloatConv.__qualname__}", None)
    sample = _sample(bundle)
    with _quiet():
        graph = prepare_pt2e(torch.export.export(module, sample).module(), quantizer)
        with torch.no_grad():
            for x in calibration:
                graph(torch.from_numpy(x))
        graph = convert_pt2e(graph, fold_quantize=False)
        edge = litert_torch.convert(graph, sample,
                                    quant_config=QuantConfig(pt2e_quantizer=quantizer))
        path = _export(edge, stage, "head-int8.tflite")
    return path, {"gdn": "division", "per_channel": cfg.per_channel,
                  "activations": cfg.activations,
                  "keep_float": list(cfg.keep_float),
                  "quantizer": f"pt2e symmetric, {'dynamic' if dynamic else 'static'} "
                               "activations"}


def _build_weight_only(bundle: Bundle, cfg, stage: Path) -> Tuple[Path, Dict]:
    """LiteRT's weight-only recipe: int8 weights per channel, fp32 activations and arithmetic."""
    import litert_torch
    from litert_torch.generative.quantize import quant_recipes

    if cfg.keep_float:
        raise UsageError(f"tflite-int8 with activations float (weights only) received "
                         f"--keep-float {list(cfg.keep_float)}, expected none: LiteRT's "
                         "weight-only recipe quantizes every layer; drop --keep-float")
    with _quiet():
        edge = litert_torch.convert(convertible_head(bundle), _sample(bundle),
                                    quant_config=quant_recipes.full_weight_only_recipe())
        path = _export(edge, stage, "head-int8.tflite")
    return path, {"gdn": "division", "per_channel": True, "activations": "float",
                  "keep_float": [], "quantizer": "LiteRT weight-only int8 (per channel), "
                                                 "fp32 activations"}
