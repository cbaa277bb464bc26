"""Stage 1: the consistency encoder, trained by masked cross-view prediction (MCP).

All views are encoded (views of one shape share one encoder and run as one
batched call), their features are concatenated and mapped by one linear layer to
``q(c | x_1..x_V)``; one decoder per view predicts the full, unmasked view from
``c``. Predicting every view from a code of heavily masked views forces ``c`` to
hold what the views share (DESIGN.md section 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mrdd.config import ModelConfig
from mrdd.models.availability import masked_mean, view_presence, zero_absent_views
from mrdd.models.gaussian import kl_standard_normal, reparameterize, squared_error
from mrdd.nn import GaussianHead, make_decoder, make_encoder


@dataclass
class ConsistencyOutput:
    mu: Tensor
    logvar: Tensor
    c: Tensor
    reconstructions: list[Tensor]


def group_views_by_shape(view_shapes: list[tuple[int, ...]]) -> list[list[int]]:
    """Indices of the views that share a shape, one group per distinct shape, in order."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for v, shape in enumerate(view_shapes):
        groups.setdefault(tuple(shape), []).append(v)
    return list(groups.values())


class ConsistencyModel(nn.Module):
    """``q(c | views)`` plus one decoder per view."""

    def __init__(self, view_shapes: list[tuple[int, ...]], cfg: ModelConfig) -> None:
        super().__init__()
        self.view_shapes = [tuple(s) for s in view_shapes]
        self.groups = group_views_by_shape(self.view_shapes)
        self.encoders = nn.ModuleList(
            make_encoder(self.view_shapes[g[0]], cfg.backbone) for g in self.groups
        )
        in_features = sum(self.encoders[i].out_features * len(g) for i, g in enumerate(self.groups))
        self.posterior = GaussianHead(in_features, cfg.c_dim)
        self.decoders = nn.ModuleList(
            make_decoder(cfg.c_dim, shape, cfg.backbone) for shape in self.view_shapes
        )

    def encode(self, views: list[Tensor], available: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of ``q(c | views)``.

        ``available`` (``N×V`` bool): absent views are replaced by zeros before encoding,
        so their tensors cannot influence ``c``. In eval mode every layer acts per sample
        (BatchNorm uses its running statistics), so ``c`` of a sample depends only on its
        own present views.
        """
        views = zero_absent_views(views, available)
        features: list[Tensor | None] = [None] * len(self.view_shapes)
        for encoder, group in zip(self.encoders, self.groups, strict=True):
            batched = encoder(torch.cat([views[v] for v in group], dim=0))
            for v, f in zip(group, batched.chunk(len(group), dim=0), strict=True):
                features[v] = f
        return self.posterior(torch.cat(features, dim=1))

    def decode(self, c: Tensor) -> list[Tensor]:
        return [decoder(c) for decoder in self.decoders]

    def forward(self, views: list[Tensor], available: Tensor | None = None) -> ConsistencyOutput:
        """Encode (sampling ``c`` in training, ``c = μ`` in eval mode) and decode every view."""
        mu, logvar = self.encode(views, available)
        c = reparameterize(mu, logvar) if self.training else mu
        return ConsistencyOutput(mu, logvar, c, self.decode(c))


def consistency_loss(
    out: ConsistencyOutput,
    views: list[Tensor],
    alpha: float,
    beta_c: float,
    available: Tensor | None = None,
) -> dict[str, Tensor]:
    """Stage-1 loss terms for an output computed from *masked* views.

    Every view's reconstruction is scored against the unmasked view:
    ``loss = alpha·Σ_v recon_v + beta_c·KL``, every term per sample (summed over
    pixels/dims) and averaged over the batch. With ``available``, an absent view is
    not scored: ``recon_v`` averages over the samples that have view ``v`` (see
    :mod:`mrdd.models.availability`); the KL covers every sample.
    """
    recon = [
        masked_mean(squared_error(x, x_hat), view_presence(available, v))
        for v, (x, x_hat) in enumerate(zip(views, out.reconstructions, strict=True))
    ]
    kl = kl_standard_normal(out.mu.float(), out.logvar.float()).mean()
    terms = {"loss": alpha * torch.stack(recon).sum() + beta_c * kl, "kl_c": kl}
    terms.update({f"recon_{v}": r for v, r in enumerate(recon)})
    return terms
