"""Stage 1: the consistency encoder, trained by masked cross-view prediction (MCP).

All views are encoded (views of one shape share one encoder and run as one
batched call), their features are concatenated and mapped by one linear layer to
``q(c | x_1..x_V)``; one decoder per view predicts the full, unmasked view from
``c``. Predicting every view from a code of heavily masked views forces ``c`` to
hold what the views share (docs/method.md, "Stage 1").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from mrdd.config import ModelConfig
from mrdd.models.availability import view_weights, zero_absent_views
from mrdd.models.gaussian import reparameterize
from mrdd.nn import GaussianHead
from mrdd.nn.networks import build_decoder, build_encoder, check_network_views, network_spec


@dataclass
class ConsistencyOutput:
    mu: Tensor
    logvar: Tensor
    c: Tensor
    reconstructions: list[Tensor]


def group_views_by_shape(
    view_shapes: list[tuple[int, ...]], specs: list[dict[str, Any] | None] | None = None
) -> list[list[int]]:
    """Indices of the views that share an encoder, one group per distinct shape, in order.
    With ``specs`` (each view's user-network spec, ``None`` for the backbone's), views of
    one shape share an encoder only when their specs are equal too."""
    specs = specs or [None] * len(view_shapes)
    groups: dict[tuple[tuple[int, ...], str], list[int]] = {}
    for v, (shape, spec) in enumerate(zip(view_shapes, specs, strict=True)):
        key = (tuple(shape), json.dumps(spec, sort_keys=True, default=str))
        groups.setdefault(key, []).append(v)
    return list(groups.values())


class ConsistencyModel(nn.Module):
    """``q(c | views)`` plus one decoder per view.

    Each view's encoder and decoder is the backbone's or the user's own
    (``model.networks.consistency_encoder`` / ``consistency_decoder``,
    :mod:`mrdd.nn.networks`); an encoder returns ``N×F`` features of any size F, which
    the linear head concatenates over the views.
    """

    def __init__(self, view_shapes: list[tuple[int, ...]], cfg: ModelConfig) -> None:
        super().__init__()
        self.view_shapes = [tuple(s) for s in view_shapes]
        check_network_views(cfg.networks, len(self.view_shapes))
        role = "consistency_encoder"
        specs = [network_spec(cfg.networks, role, v) for v in range(len(self.view_shapes))]
        self.groups = group_views_by_shape(self.view_shapes, specs)
        built = [build_encoder(cfg, role, g[0], self.view_shapes[g[0]]) for g in self.groups]
        self.encoders = nn.ModuleList(encoder for encoder, _ in built)
        in_features = sum(size * len(g) for (_, size), g in zip(built, self.groups, strict=True))
        self.posterior = GaussianHead(in_features, cfg.c_dim)
        self.decoders = nn.ModuleList(
            build_decoder(cfg, "consistency_decoder", v, cfg.c_dim, shape)
            for v, shape in enumerate(self.view_shapes)
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
