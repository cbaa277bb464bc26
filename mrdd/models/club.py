"""CLUB: a contrastive log-ratio upper bound of mutual information (Cheng et al., 2020).

A variational network ``q_θ(c | s) = N(μ_θ(s), σ_θ²(s))`` is fitted by maximum
likelihood on true pairs; then

    I_CLUB(s; c) = mean_i log q(c_i | s_i) − mean_{i,j} log q(c_j | s_i)

upper-bounds ``I(s; c)`` when q is good. MRDD minimises it w.r.t. the
view-specific encoder so that ``s_v`` stops carrying what predicts ``c``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mrdd.models.availability import masked_mean


def batch_moments(c: Tensor) -> Tensor:
    """``mean(c)`` and ``mean(c²)`` over the batch, stacked (``2×d``)."""
    return torch.stack([c.mean(dim=0), c.pow(2).mean(dim=0)])


class CLUB(nn.Module):
    """CLUB estimator for ``I(s; c)`` with an MLP mean head and a tanh-bounded log-variance."""

    def __init__(self, s_dim: int, c_dim: int, hidden: int) -> None:
        super().__init__()
        self.mu = nn.Sequential(nn.Linear(s_dim, hidden), nn.SiLU(), nn.Linear(hidden, c_dim))
        self.logvar = nn.Sequential(
            nn.Linear(s_dim, hidden), nn.SiLU(), nn.Linear(hidden, c_dim), nn.Tanh()
        )

    def log_likelihood(self, s: Tensor, c: Tensor, present: Tensor | None = None) -> Tensor:
        """Mean over the batch (over the ``present`` samples only, if given) of the
        Gaussian log-density ``log q(c_i | s_i)``."""
        mu, logvar = self.mu(s), self.logvar(s)
        log_density = -0.5 * ((c - mu).pow(2) / logvar.exp() + logvar + math.log(2 * math.pi))
        return masked_mean(log_density.sum(dim=-1), present)

    def mi_upper_bound(
        self,
        s: Tensor,
        c: Tensor,
        sampled: bool = False,
        present: Tensor | None = None,
        c_moments: Tensor | None = None,
    ) -> Tensor:
        """The CLUB estimate of ``I(s; c)`` on a batch.

        ``sampled=False`` averages the negative term over all ``N²`` pairs, in
        O(N·d) through ``mean_j (c_j − μ_i)² = mean(c²) − 2 μ_i mean(c) + μ_i²``;
        ``sampled=True`` pairs each ``s_i`` with one random ``c_j``. The
        log-variance terms are common to both terms and cancel. ``present`` (bool per
        sample) restricts the estimate to the samples that have this view.
        ``c_moments`` (``2×d``: ``mean(c)`` and ``mean(c²)``) replaces the batch's own,
        so that data-parallel ranks average the negative pairs over the global batch
        rather than their shard (``c`` carries no gradient); not with ``present``,
        whose negative pairs are the present samples'.
        """
        if present is not None and c_moments is not None:
            raise ValueError("c_moments and present exclude each other: see the docstring.")
        if present is not None:
            s, c = s[present], c[present]
            if s.shape[0] == 0:
                return s.new_zeros(())
        mu, logvar = self.mu(s), self.logvar(s)
        inv_var = torch.exp(-logvar)
        positive = -0.5 * ((c - mu).pow(2) * inv_var).sum(dim=-1)
        if sampled:
            c_neg = c[torch.randperm(c.shape[0], device=c.device)]
            negative = -0.5 * ((c_neg - mu).pow(2) * inv_var).sum(dim=-1)
        else:
            c_mean, c_sq_mean = batch_moments(c) if c_moments is None else c_moments
            mean_sq_dist = c_sq_mean - 2 * mu * c_mean + mu.pow(2)
            negative = -0.5 * (mean_sq_dist * inv_var).sum(dim=-1)
        return (positive - negative).mean()
