"""Plain-torch layers of the heads: GDN1 (trainable and folded) and the factorized prior.

Parameter and buffer names follow CompressAI, so state dicts written by either
load into the other. Operation order follows CompressAI too, so the folded
modules give bit-identical float32 results.
"""

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

REPARAM_OFFSET = 2.0 ** -18
PEDESTAL = REPARAM_OFFSET ** 2
BETA_MIN = 1e-6


class LowerBound(nn.Module):
    """``max(x, bound)`` with the bound kept as a buffer (CompressAI name: ``bound``)."""

    def __init__(self, bound: float):
        super().__init__()
        self.register_buffer("bound", torch.tensor([float(bound)]))

    def forward(self, x: Tensor) -> Tensor:
        return torch.max(x, self.bound)


class NonNegative(nn.Module):
    """Reparametrization ``max(x, bound)**2 - pedestal`` used by GDN."""

    def __init__(self, minimum: float = 0.0):
        super().__init__()
        self.register_buffer("pedestal", torch.tensor([PEDESTAL]))
        self.lower_bound = LowerBound((minimum + PEDESTAL) ** 0.5)

    def init(self, x: Tensor) -> Tensor:
        return torch.sqrt(torch.max(x + self.pedestal, self.pedestal))

    def forward(self, x: Tensor) -> Tensor:
        return self.lower_bound(x) ** 2 - self.pedestal


def effective_gdn_constants(beta, gamma, beta_bound, beta_pedestal, gamma_bound, gamma_pedestal):
    """Fold CompressAI's reparametrization: ``max(raw, bound)**2 - pedestal`` (float32)."""
    beta_eff = torch.max(beta, beta_bound) ** 2 - beta_pedestal
    gamma_eff = torch.max(gamma, gamma_bound) ** 2 - gamma_pedestal
    return beta_eff, gamma_eff


class GDN1(nn.Module):
    """Trainable simplified GDN: ``x / (beta + gamma @ |x|)`` (inverse: ``x * (...)``)."""

    def __init__(self, channels: int, inverse: bool = False, gamma_init: float = 0.1):
        super().__init__()
        self.inverse = inverse
        self.beta_reparam = NonNegative(minimum=BETA_MIN)
        self.gamma_reparam = NonNegative()
        self.beta = nn.Parameter(self.beta_reparam.init(torch.ones(channels)))
        self.gamma = nn.Parameter(self.gamma_reparam.init(gamma_init * torch.eye(channels)))

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        beta = self.beta_reparam(self.beta)
        gamma = self.gamma_reparam(self.gamma).reshape(c, c, 1, 1)
        norm = F.conv2d(torch.abs(x), gamma, beta)
        if not self.inverse:
            norm = 1.0 / norm
        return x * norm


class FoldedGDN1(nn.Module):
    """GDN1 with effective constants (no reparametrization left in the graph).

    ``divide=True`` computes ``x / norm`` instead of CompressAI's
    ``x * (1 / norm)``, for converters that mishandle the reciprocal.
    """

    def __init__(self, beta: Tensor, gamma: Tensor, inverse: bool = False):
        super().__init__()
        c = beta.shape[0]
        self.inverse = inverse
        self.divide = False
        self.register_buffer("beta", beta.detach().clone().float())
        self.register_buffer("gamma", gamma.detach().clone().float().reshape(c, c, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        norm = F.conv2d(torch.abs(x), self.gamma, self.beta)
        if self.inverse:
            return x * norm
        if self.divide:
            return x / norm
        return x * (1.0 / norm)


class FactorizedPrior(nn.Module):
    """Learned factorized density of CompressAI's ``EntropyBottleneck`` (same names)."""

    def __init__(self, channels: int, filters: Sequence[int] = (3, 3, 3, 3),
                 init_scale: float = 10.0, tail_mass: float = 1e-9):
        super().__init__()
        dims = (1, *filters, 1)
        scale = init_scale ** (1 / (len(filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(filters) + 1):
            init = float(np.log(np.expm1(1 / scale / dims[i + 1])))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[i + 1], 1) - 0.5))
            if i < len(filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))
        self.quantiles = nn.Parameter(
            torch.tensor([-init_scale, 0.0, init_scale]).repeat(channels, 1, 1))
        target = float(np.log(2 / tail_mass - 1))
        self.register_buffer("target", torch.tensor([-target, 0.0, target]))

    def logits_cumulative(self, x: Tensor, stop_gradient: bool = False) -> Tensor:
        """Logit of the cumulative density at ``x`` of shape [C, 1, N]."""
        for i, (matrix, bias) in enumerate(zip(self.matrices, self.biases)):
            if stop_gradient:
                matrix, bias = matrix.detach(), bias.detach()
            x = torch.matmul(F.softplus(matrix), x) + bias
            if i < len(self.factors):
                factor = self.factors[i].detach() if stop_gradient else self.factors[i]
                x = x + torch.tanh(factor) * torch.tanh(x)
        return x

    def likelihood(self, x: Tensor, stop_gradient: bool = False):
        """Return (likelihood, lower logits, upper logits) of integer bins around ``x``."""
        lower = self.logits_cumulative(x - 0.5, stop_gradient)
        upper = self.logits_cumulative(x + 0.5, stop_gradient)
        return torch.sigmoid(upper) - torch.sigmoid(lower), lower, upper

    def medians(self) -> Tensor:
        return self.quantiles[:, 0, 1]

    def aux_loss(self) -> Tensor:
        """Loss that moves ``quantiles`` to the tail-mass targets."""
        logits = self.logits_cumulative(self.quantiles, stop_gradient=True)
        return torch.abs(logits - self.target).sum()
