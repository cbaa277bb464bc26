"""CLUB estimators ``q_θ(c | s_v)`` (Cheng et al., 2020): the networks only.

Each is a diagonal Gaussian ``N(μ_θ(s), σ_θ²(s))`` with an MLP mean head and a
tanh-bounded log-variance head (a variance that cannot explode or vanish keeps the
bound's ratio well conditioned). Their objectives, the negative log-likelihood that fits
θ and the upper bound of ``I(s_v; c)`` that the view models minimise, are
:func:`mrdd.models.objectives.estimator_loss` and
:func:`mrdd.models.objectives.club_upper_bound`.
"""

from __future__ import annotations

from torch import Tensor, nn

from mrdd.models.objectives import club_upper_bound, code_moment_sums


class CLUB(nn.Module):
    """``s`` (``B×s_dim``) → ``(μ_θ(s), log σ²_θ(s))``, each ``B×c_dim``."""

    def __init__(self, s_dim: int, c_dim: int, hidden: int) -> None:
        super().__init__()
        self.mu = nn.Sequential(nn.Linear(s_dim, hidden), nn.SiLU(), nn.Linear(hidden, c_dim))
        self.logvar = nn.Sequential(
            nn.Linear(s_dim, hidden), nn.SiLU(), nn.Linear(hidden, c_dim), nn.Tanh()
        )

    def forward(self, s: Tensor) -> tuple[Tensor, Tensor]:
        return self.mu(s), self.logvar(s)

    def mi_upper_bound(self, s: Tensor, c: Tensor, sampled: bool = False) -> Tensor:
        """``I_CLUB(s; c)`` over all pairs of a complete batch (or one random pair per
        sample with ``sampled``), e.g. to report the trained estimator's value."""
        weights = s.new_ones(s.shape[0], 1)
        mu, logvar = self(s)
        return club_upper_bound(
            mu, logvar, c, weights[:, 0], code_moment_sums(c, weights)[0], sampled
        )


class Estimators(nn.ModuleList):
    """One :class:`CLUB` per view; ``forward(s)`` maps every view's ``s_v`` to its
    ``(μ_θ, log σ²_θ)``. A module of its own so that data-parallel training can wrap
    exactly the parameters the estimator update changes."""

    def forward(self, s: list[Tensor]) -> list[tuple[Tensor, Tensor]]:
        return [club(s_v) for club, s_v in zip(self, s, strict=True)]
