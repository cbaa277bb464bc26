"""The MRDD composition: a frozen consistency model, one specific VAE and one CLUB per view."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mrdd.config import ModelConfig
from mrdd.models.club import CLUB
from mrdd.models.consistency import ConsistencyModel
from mrdd.models.gaussian import kl_standard_normal, squared_error
from mrdd.models.specific import SpecificModels, SpecificOutput, SpecificVAE


@dataclass
class Codes:
    """Evaluation-time codes of a batch: ``c = μ_c`` and ``s_v = μ_v`` for every view."""

    c: Tensor
    s: list[Tensor]

    def concat(self, views: list[int] | None = None) -> Tensor:
        """``C‖S_v`` for the given views (all views when ``None``)."""
        chosen = range(len(self.s)) if views is None else views
        return torch.cat([self.c, *(self.s[v] for v in chosen)], dim=1)

    def as_dict(self, best_view: int) -> dict[str, Tensor]:
        """The named representations of DESIGN.md section 3: C, S_v, C+S_best, C+S_all."""
        out = {"C": self.c}
        out.update({f"S_{v}": s for v, s in enumerate(self.s)})
        out["C+S_best"] = self.concat([best_view])
        out["C+S_all"] = self.concat()
        return out


class Estimators(nn.ModuleList):
    """One CLUB estimator per view; ``forward`` is their summed log-likelihood on true pairs."""

    def forward(self, s: list[Tensor], c: Tensor) -> Tensor:
        return torch.stack(
            [club.log_likelihood(s_v, c) for club, s_v in zip(self, s, strict=True)]
        ).sum()


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
        self.specific = SpecificModels(SpecificVAE(shape, cfg) for shape in view_shapes)
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
        """``c = μ_c`` of the unmasked views from the frozen stage-1 encoder (fp32)."""
        mu, _ = self.consistency.encode(views)
        return mu.float()

    @torch.no_grad()
    def encode(self, views: list[Tensor]) -> Codes:
        """Posterior means of ``c`` and every ``s_v`` (no sampling, whatever the mode)."""
        c = self.consistent_code(views)
        return Codes(
            c, [vae.encode(x)[0].float() for vae, x in zip(self.specific, views, strict=True)]
        )

    @torch.no_grad()
    def reconstruct(self, views: list[Tensor]) -> list[Tensor]:
        """Stage-2 reconstructions from ``[μ_v, μ_c]``."""
        codes = self.encode(views)
        return [vae.decode(s, codes.c) for vae, s in zip(self.specific, codes.s, strict=True)]


def view_model_loss(
    model: MRDD, outputs: list[SpecificOutput], views: list[Tensor], c: Tensor
) -> dict[str, Tensor]:
    """``Σ_v recon_v + β_s·KL_v + λ·I_CLUB(s_v; c)`` for the stage-2 view models.

    The CLUB estimators enter with their current parameters; the caller must
    back-propagate into the view models only (``backward(inputs=...)``), so θ
    stays fixed during this update as DESIGN.md section 2 requires.
    """
    cfg = model.cfg
    terms: dict[str, Tensor] = {}
    total = torch.zeros((), device=c.device)
    for v, (club, x, out) in enumerate(zip(model.club, views, outputs, strict=True)):
        recon = squared_error(x, out.reconstruction).mean()
        kl = kl_standard_normal(out.mu.float(), out.logvar.float()).mean()
        mi = club.mi_upper_bound(out.s.float(), c, sampled=cfg.club_sampled)
        total = total + recon + cfg.beta_s * kl + cfg.club_weight * mi
        terms.update({f"recon_{v}": recon, f"kl_s{v}": kl, f"club_{v}": mi})
    terms["loss"] = total
    return terms
