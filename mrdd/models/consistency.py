"""Stage 1: the consistency encoder, trained by masked cross-view prediction (MCP).

All views are encoded (views of one shape share one encoder and run as one
batched call), their features are concatenated and mapped by one linear layer to
``q(c | x_1..x_V)``; one decoder per view predicts the full, unmasked view from
``c``. Predicting every view from a code of heavily masked views forces ``c`` to
hold what the views share (docs/method.md, "Stage 1").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mrdd.config import ModelConfig
from mrdd.models.availability import view_weights, zero_absent_views
from mrdd.models.gaussian import reparameterize
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
        if available is not None:
            views = zero_absent_views(views, view_weights(views, available))
        features: list[Tensor | None] = [None] * len(self.view_shapes)
        for encoder, group in zip(self.encoders, self.groups, strict=True):
            batched = encoder(torch.cat([views[v] for v in group], dim=0))
            for v, f in zip(group, batched.chunk(len(group), dim=0), strict=True):
                features[v] = f
        return self.posterior(torch.cat(features, dim=1))

    def decode(self, c: Tensor) -> list[Tensor]:
        return [decoder(c) for decoder in self.decoders]

    def forward(self, views: list[Tensor]) -> ConsistencyOutput:
        """Encode (sampling ``c`` in training, ``c = μ`` in eval mode) and decode every view.
        Absent views must already be zeros (:func:`~mrdd.models.zero_absent_views`)."""
        mu, logvar = self.encode(views)
        c = reparameterize(mu, logvar) if self.training else mu
        return ConsistencyOutput(mu, logvar, c, self.decode(c))
