"""Sampling from the diagonal-Gaussian posteriors of both stages."""

from __future__ import annotations

import torch
from torch import Tensor


def reparameterize(mu: Tensor, logvar: Tensor) -> Tensor:
    """Sample ``mu + sigma * eps`` with ``eps ~ N(0, I)`` (differentiable in mu, logvar)."""
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
