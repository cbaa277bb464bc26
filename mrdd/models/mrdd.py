"""The MRDD composition: a frozen consistency model, one specific VAE and one CLUB per view."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mrdd.config import ModelConfig
from mrdd.models.availability import fill_absent, view_weights, zero_absent_views
from mrdd.models.club import CLUB, Estimators
from mrdd.models.consistency import ConsistencyModel
from mrdd.models.specific import SpecificModels, SpecificVAE


@dataclass
class Codes:
    """Evaluation-time codes of a batch: ``c = μ_c`` and ``s_v = μ_v`` for every view."""

    c: Tensor
    s: list[Tensor]

    def concat(self, views: list[int] | None = None) -> Tensor:
        """``C‖S_v`` for the given views (all views when ``None``)."""
        chosen = range(len(self.s)) if views is None else views
        return torch.cat([self.c, *(self.s[v] for v in chosen)], dim=1)


class MRDD(nn.Module):
    """Stage-2 model. ``consistency`` is frozen: eval mode, no gradients, ever.

    ``train()`` only switches the view models and estimators; the consistency
    model stays in eval mode so its BatchNorm statistics never move and ``c`` is
    always the posterior mean of the unmasked views.
    """

    def __init__(self, view_shapes: list[tuple[int, ...]], cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.consistency = ConsistencyModel(view_shapes, cfg)
        self.specific = SpecificModels(
            SpecificVAE(shape, cfg, v) for v, shape in enumerate(view_shapes)
        )
        self.club = Estimators(CLUB(cfg.v_dim, cfg.c_dim, cfg.club_hidden) for _ in view_shapes)
        self.consistency.requires_grad_(False)
        self.consistency.eval()

    def train(self, mode: bool = True) -> MRDD:
        super().train(mode)
        self.consistency.eval()
        return self

    @property
    def num_views(self) -> int:
        return len(self.specific)

    @torch.no_grad()
    def consistent_code(self, views: list[Tensor]) -> Tensor:
        """``c = μ_c`` of the unmasked views from the frozen stage-1 encoder (fp32); absent
        views must already be zeros."""
        mu, _ = self.consistency.encode(views)
        return mu.float()

    @torch.no_grad()
    def encode(self, views: list[Tensor], available: Tensor | None = None) -> Codes:
        """Posterior means of ``c`` and every ``s_v`` (no sampling, whatever the mode).

        With ``available`` (``N×V`` bool), ``c`` comes from the present views only and an
        absent view's ``s_v`` is its prior mean, 0: nothing of an absent tensor is used.
        """
        if available is not None:
            views = zero_absent_views(views, view_weights(views, available))
        c = self.consistent_code(views)
        s = []
        for v, (vae, x) in enumerate(zip(self.specific, views, strict=True)):
            mu = vae.encode(x)[0].float()
            if available is not None:
                mu = torch.where(available[:, v, None], mu, torch.zeros_like(mu))
            s.append(mu)
        return Codes(c, s)

    @torch.no_grad()
    def impute(
        self, views: list[Tensor], available: Tensor, source: str = "specific"
    ) -> list[Tensor]:
        """The views with every absent one predicted from ``c`` of the present views.

        ``source="specific"``: ``x̂_v = decoder_v(s_v = 0, c)``; the specific code of an
        unseen view is unknown, so its prior mean 0 stands in. ``source="consistency"``:
        the frozen stage-1 decoder of view ``v``, which MCP trained to predict the full
        view from ``c`` of masked input. Present views are returned as they are.
        """
        if not isinstance(available, Tensor) or available.shape != (views[0].shape[0], len(views)):
            raise ValueError(
                "impute needs available, an N×V bool tensor (True where a sample has the "
                f"view) for the {len(views)} views; got "
                f"{type(available).__name__ if available is None else tuple(available.shape)}."
            )
        if source not in ("specific", "consistency"):
            raise ValueError(f"source must be 'specific' or 'consistency', got {source!r}.")
        codes = self.encode(views, available)
        if source == "consistency":
            predicted = self.consistency.decode(codes.c)
        else:
            predicted = [
                vae.decode(s, codes.c) for vae, s in zip(self.specific, codes.s, strict=True)
            ]
        return fill_absent(views, predicted, available)

    @torch.no_grad()
    def reconstruct(self, views: list[Tensor]) -> list[Tensor]:
        """Stage-2 reconstructions from ``[μ_v, μ_c]``."""
        codes = self.encode(views)
        return [vae.decode(s, codes.c) for vae, s in zip(self.specific, codes.s, strict=True)]


@torch.no_grad()
def impute_views(
    model: MRDD | ConsistencyModel, views: list[Tensor], available: Tensor, source: str
) -> list[Tensor]:
    """``views`` with the absent ones predicted from the present ones, by either kind of
    trained model: an :class:`MRDD` with the decoder ``source`` names
    (:meth:`MRDD.impute`); a stage-1 :class:`ConsistencyModel`, which has no other, with
    its own decoders from ``c`` of the present views."""
    if isinstance(model, MRDD):
        return model.impute(views, available, source)
    mu, _ = model.encode(views, available)
    return fill_absent(views, model.decode(mu), available)
