"""Diagonal-Gaussian helpers shared by the consistency and specific encoders."""

from __future__ import annotations

import torch
from torch import Tensor


def reparameterize(mu: Tensor, logvar: Tensor) -> Tensor:
    """Sample ``mu + sigma * eps`` with ``eps ~ N(0, I)`` (differentiable in mu, logvar)."""
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


def kl_standard_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """Per-sample KL(N(mu, diag exp(logvar)) || N(0, I)), summed over dimensions."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=-1)


def squared_error(x: Tensor, x_hat: Tensor) -> Tensor:
    """Per-sample squared error summed over all of a sample's pixels or features."""
    return (x_hat.float() - x.float()).pow(2).flatten(1).sum(dim=1)
