"""Head architectures in plain torch, built from a (normalized) bottleneck state dict.

Data flow of the exported graphs::

    fp:  image ─ conv5/2 ─ GDN1 ─ conv5/2 ─ GDN1 ─ conv2 ─ y ─ round(y - median) ─ symbols
         (the latent conv: conv2/1 as published, or conv4/2 for a latent one stride coarser,
         as the bundled demo students have; told apart by its kernel, see LATENT_CONVS)
    bq:  image ─ conv7/2 ─ BN ─ ReLU ─ maxpool ─ BN ─ ReLU ─ conv2/2 ─ y ─ uint8 min/max ─ q,
                                                                        scale, zero_point
"""

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from sc2deploy.errors import CheckpointError
from sc2deploy.export.checkpoint import check_shapes
from sc2deploy.export.layers import (BETA_MIN, PEDESTAL, FactorizedPrior, FoldedGDN1,
                                     effective_gdn_constants)
from sc2deploy.export.tables import TablesFormula, choose_formula, compute_tables, stored_tables
from sc2deploy.prior import PriorTables
from sc2deploy.specs import HeadSpec

QMAX = 255.0
# The fp encoder's latent conv (encoder.4), by kernel size: (stride, padding).
LATENT_CONVS = {2: (1, 0), 4: (2, 1)}


def _conv(weight: Tensor, stride: int, padding: int) -> nn.Conv2d:
    out_c, in_c, k, _ = weight.shape
    conv = nn.Conv2d(in_c, out_c, k, stride=stride, padding=padding, bias=False)
    conv.weight.data.copy_(weight)
    return conv


class FPHead(nn.Module):
    """Folded encoder of the factorized-prior bottleneck; outputs integer-valued symbols."""

    def __init__(self, encoder: nn.Sequential, medians: Tensor):
        super().__init__()
        self.encoder = encoder
        self.register_buffer("medians", medians.detach().float().reshape(1, -1, 1, 1))

    output_names = ("symbols",)

    def pre_round(self, x: Tensor) -> Tensor:
        return self.encoder(x) - self.medians

    def forward(self, x: Tensor) -> Tensor:
        return torch.round(self.pre_round(x))


class BQHead(nn.Module):
    """BQ encoder followed by per-tensor min/max uint8 quantization."""

    def __init__(self, encoder: nn.Sequential):
        super().__init__()
        self.encoder = encoder

    output_names = ("symbols", "scale", "zero_point")

    def _quantize(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        y = self.encoder(x)
        lo, hi = torch.min(y), torch.max(y)
        scale = (hi - lo) / QMAX
        zero_point = torch.floor(torch.clamp(0.0 - lo / scale, 0.0, QMAX))
        return torch.clamp(zero_point + y / scale, 0.0, QMAX), scale, zero_point

    def pre_round(self, x: Tensor) -> Tensor:
        return self._quantize(x)[0]

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        q, scale, zero_point = self._quantize(x)
        return torch.round(q), scale.reshape(1), zero_point.reshape(1)


@dataclass
class BuiltHead:
    """A head ready for export, with its prior (None for BQ) and where its tables came from."""

    module: nn.Module
    prior: Optional[PriorTables]
    tables_source: str  # "checkpoint", "computed" or "none"
    formula: Optional[TablesFormula] = None  # pmf formula, applied when tables are "computed"

    @property
    def output_names(self) -> Tuple[str, ...]:
        return self.module.output_names


def build_head(spec: HeadSpec, state: Dict[str, Tensor],
               formula: Optional[TablesFormula] = None) -> BuiltHead:
    """Build the export module of ``spec`` from a normalized bottleneck state dict.

    ``formula`` computes missing tables (default: ``choose_formula()``, i.e. that of
    ``matrices.{i}`` names); resolve it from the checkpoint before its names are normalized.
    """
    if spec.family == "fp":
        return _build_fp(state, formula or choose_formula())
    return _build_bq(state, spec.bq_channels)


def _gdn_shapes(prefix: str, c: int) -> Dict[str, Tuple[int, ...]]:
    return {f"{prefix}.beta": (c,), f"{prefix}.gamma": (c, c)}


def _fold_gdn(state: Dict[str, Tensor], prefix: str) -> FoldedGDN1:
    def buf(name: str, default: float) -> Tensor:
        return state.get(f"{prefix}.{name}", torch.tensor([default]))

    beta, gamma = effective_gdn_constants(
        state[f"{prefix}.beta"].float(), state[f"{prefix}.gamma"].float(),
        buf("beta_reparam.lower_bound.bound", (BETA_MIN + PEDESTAL) ** 0.5),
        buf("beta_reparam.pedestal", PEDESTAL),
        buf("gamma_reparam.lower_bound.bound", PEDESTAL ** 0.5),
        buf("gamma_reparam.pedestal", PEDESTAL),
    )
    return FoldedGDN1(beta, gamma)


def _latent_kernel(weight: Tensor) -> int:
    """The latent conv's kernel size; CheckpointError unless one of LATENT_CONVS."""
    k = int(weight.shape[-1])
    if k not in LATENT_CONVS or weight.shape[-2] != k:
        raise CheckpointError(
            f"encoder.4.weight has a {tuple(weight.shape[-2:])} kernel; expected 2 x 2 (the "
            "published stride-1 latent conv) or 4 x 4 (stride 2)")
    return k


def _prior_shapes(state: Dict[str, Tensor], c: int) -> Dict[str, Tuple[int, ...]]:
    layers = sum(1 for k in state if k.startswith("entropy_bottleneck.matrices."))
    if layers < 2:
        raise CheckpointError(
            "missing entropy_bottleneck matrices (expected matrices.0…4, or _matrix0…4 in "
            "CompressAI <= 1.2.6); is this a factorized-prior student?")
    dims = [1] + [int(state[f"entropy_bottleneck.matrices.{i}"].shape[1])
                  for i in range(layers - 1)] + [1]
    shapes = {"entropy_bottleneck.quantiles": (c, 1, 3)}
    for i in range(layers):
        shapes[f"entropy_bottleneck.matrices.{i}"] = (c, dims[i + 1], dims[i])
        shapes[f"entropy_bottleneck.biases.{i}"] = (c, dims[i + 1], 1)
        if i < layers - 1:
            shapes[f"entropy_bottleneck.factors.{i}"] = (c, dims[i + 1], 1)
    return shapes


def _load_prior(state: Dict[str, Tensor], c: int, shapes) -> FactorizedPrior:
    layers = sum(1 for k in shapes if ".matrices." in k)
    filters = [shapes[f"entropy_bottleneck.matrices.{i}"][1] for i in range(layers - 1)]
    prior = FactorizedPrior(c, filters)
    sub = {k[len("entropy_bottleneck."):]: v for k, v in state.items()
           if k in shapes or k == "entropy_bottleneck.target"}
    prior.load_state_dict(sub, strict=False)
    return prior


def _build_fp(state: Dict[str, Tensor], formula: TablesFormula) -> BuiltHead:
    latent = state.get("encoder.4.weight")
    if latent is None or latent.ndim != 4:
        raise CheckpointError("missing encoder.4.weight (the latent conv, shape [N, 2N, 2, 2] "
                              "or [N, 2N, 4, 4])")
    n, k = int(latent.shape[0]), _latent_kernel(latent)
    expected = {"encoder.0.weight": (4 * n, 3, 5, 5), "encoder.2.weight": (2 * n, 4 * n, 5, 5),
                "encoder.4.weight": (n, 2 * n, k, k),
                **_gdn_shapes("encoder.1", 4 * n), **_gdn_shapes("encoder.3", 2 * n)}
    expected.update(_prior_shapes(state, n))
    check_shapes(state, expected, f"the factorized-prior bottleneck with {n} latent channels")
    encoder = nn.Sequential(
        _conv(state["encoder.0.weight"], 2, 2), _fold_gdn(state, "encoder.1"),
        _conv(state["encoder.2.weight"], 2, 2), _fold_gdn(state, "encoder.3"),
        _conv(latent, *LATENT_CONVS[k]),
    )
    eb_state = {k[len("entropy_bottleneck."):]: v for k, v in state.items()
                if k.startswith("entropy_bottleneck.")}
    tables, source = stored_tables(eb_state), "checkpoint"
    if tables is None:
        tables, source = compute_tables(_load_prior(state, n, expected), formula.name), "computed"
    if tables.channels != n:
        raise CheckpointError(f"entropy tables have {tables.channels} channels, expected {n}")
    head = FPHead(encoder, torch.from_numpy(tables.medians))
    return BuiltHead(head.eval(), tables, source, formula)


def _bn(state: Dict[str, Tensor], prefix: str) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(state[f"{prefix}.weight"].shape[0])
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(bn, name).data.copy_(state[f"{prefix}.{name}"])
    return bn


def _build_bq(state: Dict[str, Tensor], channels: int) -> BuiltHead:
    expected = {"encoder.0.weight": (64, 3, 7, 7), "encoder.6.weight": (channels, 64, 2, 2)}
    for bn in ("encoder.1", "encoder.4"):
        expected.update({f"{bn}.{n}": (64,) for n in
                         ("weight", "bias", "running_mean", "running_var")})
    check_shapes(state, expected, f"the BQ bottleneck with {channels} channels")
    encoder = nn.Sequential(
        _conv(state["encoder.0.weight"], 2, 3), _bn(state, "encoder.1"), nn.ReLU(),
        nn.MaxPool2d(3, 2, 1), _bn(state, "encoder.4"), nn.ReLU(),
        _conv(state["encoder.6.weight"], 2, 1),
    )
    return BuiltHead(BQHead(encoder).eval(), None, "none")


def head_arrays(module: nn.Module) -> Dict[str, np.ndarray]:
    """The export module's tensors as plain arrays (stored in the bundle without pickle)."""
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()
            if not k.endswith("num_batches_tracked")}


def head_from_arrays(family: str, arrays: Dict[str, np.ndarray]) -> nn.Module:
    """Rebuild the torch export module of a bundle (the fp32 reference) from its arrays."""
    t = {k: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()}
    if family == "fp":
        encoder = nn.Sequential(
            _conv(t["encoder.0.weight"], 2, 2), FoldedGDN1(t["encoder.1.beta"], t["encoder.1.gamma"]),
            _conv(t["encoder.2.weight"], 2, 2), FoldedGDN1(t["encoder.3.beta"], t["encoder.3.gamma"]),
            _conv(t["encoder.4.weight"], *LATENT_CONVS[_latent_kernel(t["encoder.4.weight"])]))
        return FPHead(encoder, t["medians"]).eval()
    state = {k[len("encoder."):]: v for k, v in t.items()}
    channels = int(state["6.weight"].shape[0])
    encoder = _build_bq({f"encoder.{k}": v for k, v in state.items()}, channels).module.encoder
    return BQHead(encoder).eval()
