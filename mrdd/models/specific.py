"""Stage 2 per-view model: a VAE for ``s_v`` whose decoder also receives ``c``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mrdd.config import ModelConfig
from mrdd.models.gaussian import reparameterize
from mrdd.nn import GaussianHead
from mrdd.nn.networks import build_decoder, build_encoder


@dataclass
class SpecificOutput:
    mu: Tensor
    logvar: Tensor
    s: Tensor
    reconstruction: Tensor


class SpecificVAE(nn.Module):
    """``q(s_v | x_v)`` and a decoder ``p(x_v | s_v, c)``.

    Handing ``c`` to the decoder for free means ``s_v`` has no reason to copy
    it; the CLUB penalty then removes what leaks anyway.
    """

    def __init__(self, shape: tuple[int, ...], cfg: ModelConfig, view: int = 0) -> None:
        """The networks of ``view`` (per-sample ``shape``): the backbone's, or the user's own
        for that view (``model.networks.specific_encoder`` / ``specific_decoder``)."""
        super().__init__()
        shape = tuple(shape)
        self.encoder, features = build_encoder(cfg, "specific_encoder", view, shape)
        self.posterior = GaussianHead(features, cfg.v_dim)
        self.decoder = build_decoder(cfg, "specific_decoder", view, cfg.v_dim + cfg.c_dim, shape)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.posterior(self.encoder(x))

    def decode(self, s: Tensor, c: Tensor) -> Tensor:
        return self.decoder(torch.cat([s, c.to(s.dtype)], dim=1))

    def forward(self, x: Tensor, c: Tensor) -> SpecificOutput:
        """Encode (sampling ``s`` in training, the mean in eval mode) and reconstruct."""
        mu, logvar = self.encode(x)
        s = reparameterize(mu, logvar) if self.training else mu
        return SpecificOutput(mu, logvar, s, self.decode(s, c))


class SpecificModels(nn.ModuleList):
    """One :class:`SpecificVAE` per view; ``forward(views, c)`` runs them all.

    A module of its own so that distributed training can wrap exactly the
    parameters that the view-model loss updates.
    """

    def forward(self, views: list[Tensor], c: Tensor) -> list[SpecificOutput]:
        return [vae(x, c) for vae, x in zip(self, views, strict=True)]
