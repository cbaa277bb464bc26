"""Every objective of MRDD, one function each, with its equation (docs/method.md, stages 1-2).

Networks only produce distribution parameters; the functions here turn them into the
losses. Notation: ``B`` samples, ``V`` views, ``x_v`` view ``v``, ``c`` the consistent
code (``c_dim``), ``s_v`` the specific code of view ``v`` (``v_dim``), ``w`` a ``B×V``
weight per sample and view: 1 where the sample has the view, 0 where it is absent
(all ones for complete data). Every loss is per sample (squared error summed over a
sample's pixels or features, KL summed over dimensions) and then averaged:

    mean_w(e) = Σ_i w_i e_i / max(1, Σ_i w_i)

so a view's term keeps its complete-data scale at any missing rate, and the weights
(``stage1.alpha``, ``stage1.beta_c``; ``stage2.beta_s``, λ = ``stage2.club_weight``) keep
their meaning.

Stage 2 makes two updates per step: :func:`estimator_loss` for the CLUB estimators θ
(on detached ``s_v``), then :func:`view_model_loss` for the view models with θ held
fixed. The second is computed after the first update, so the view models are pushed
away from the estimator that has just learnt from this batch.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mrdd.config import Stage1Config, Stage2Config


def weighted_mean(values: Tensor, weights: Tensor) -> Tensor:
    """``Σ_i w_i v_i / max(1, Σ_i w_i)`` of per-sample ``values`` and ``weights`` (``B`` each)."""
    return (values * weights).sum() / weights.sum().clamp(min=1.0)


def squared_error(x: Tensor, x_hat: Tensor) -> Tensor:
    """``‖x̂_i − x_i‖²`` per sample (``B``), summed over all of a sample's pixels or features."""
    return (x_hat.float() - x.float()).pow(2).flatten(1).sum(dim=1)


def kl_standard_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """``KL(N(μ, diag σ²) ‖ N(0, I)) = ½ Σ_d (μ² + σ² − 1 − log σ²)`` per sample (``B``)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=-1)


def consistency_loss(
    mu: Tensor,
    logvar: Tensor,
    reconstructions: list[Tensor],
    views: list[Tensor],
    weights: Tensor,
    cfg: Stage1Config,
) -> dict[str, Tensor]:
    """Stage 1, masked cross-view prediction:

        L_MCP = α · Σ_v mean_w(‖x̂_v − x_v‖²) + β_c · mean(KL(q(c | x̃_1..x̃_V) ‖ N(0, I)))

    ``mu``, ``logvar`` (``B×c_dim``): the posterior of ``c`` computed from the *masked*
    views; ``reconstructions[v]`` (shape of ``views[v]``): decoder ``v`` applied to the
    sampled ``c``, scored against the *unmasked* view. An absent view is not scored; the
    KL covers every sample. Returns ``loss``, ``kl_c`` and ``recon_v`` for every view.
    """
    recon = [
        weighted_mean(squared_error(x, x_hat), weights[:, v])
        for v, (x, x_hat) in enumerate(zip(views, reconstructions, strict=True))
    ]
    kl = kl_standard_normal(mu.float(), logvar.float()).mean()
    terms = {"loss": cfg.alpha * torch.stack(recon).sum() + cfg.beta_c * kl, "kl_c": kl}
    terms.update({f"recon_{v}": r for v, r in enumerate(recon)})
    return terms


def gaussian_log_density(c: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """``log N(c_i; μ_i, diag σ_i²)`` per sample (``B``): the estimator's ``log q_θ(c | s)``."""
    return -0.5 * ((c - mu).pow(2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(dim=-1)


def estimator_loss(predictions: list[tuple[Tensor, Tensor]], c: Tensor, weights: Tensor) -> Tensor:
    """Stage 2, the CLUB estimators' negative log-likelihood on true pairs:

        L_θ = − Σ_v mean_w(log q_θv(c_i | s_v,i))

    ``predictions[v]`` = ``(μ_θ(s_v), log σ²_θ(s_v))`` (``B×c_dim`` each), computed from
    *detached* ``s_v`` so that only θ learns from this loss.
    """
    return -torch.stack(
        [
            weighted_mean(gaussian_log_density(c, mu, logvar), weights[:, v])
            for v, (mu, logvar) in enumerate(predictions)
        ]
    ).sum()


def code_moment_sums(c: Tensor, weights: Tensor) -> Tensor:
    """``[Σ_j w_j c_j, Σ_j w_j c_j², Σ_j w_j]`` (``3×c_dim``; the last row repeats the
    count) for every view's weights: ``V×3×c_dim``. Sums, not means, so that
    data-parallel ranks add theirs up into the moments of the global batch."""
    w = weights.T.unsqueeze(-1)  # V×B×1
    return torch.stack([(w * c).sum(1), (w * c.pow(2)).sum(1), w.sum(1).expand(-1, c.shape[1])], 1)


def club_upper_bound(
    mu: Tensor,
    logvar: Tensor,
    c: Tensor,
    weights: Tensor,
    moment_sums: Tensor,
    sampled: bool = False,
) -> Tensor:
    """CLUB's upper bound of ``I(s; c)`` (Cheng et al., 2020) for one view:

        I_CLUB = mean_i log q_θ(c_i | s_i) − mean_i mean_j log q_θ(c_j | s_i)

    The log-variance terms of the two are equal and cancel, leaving
    ``mean_i ½ Σ_d [mean_j (c_j − μ_i)² − (c_i − μ_i)²] / σ_i²``, and
    ``mean_j (c_j − μ_i)² = m₂ − 2 μ_i m₁ + μ_i²`` with ``m₁``, ``m₂`` the (weighted)
    first and second moments of ``c``: all ``B²`` pairs in O(B·d). ``moment_sums``
    (``3×c_dim``, see :func:`code_moment_sums`) define the pairs' ``j``: the global batch
    under data parallelism. ``sampled`` pairs each ``s_i`` with one random ``c_j`` of this
    batch instead (pairs with an absent side are left out). ``mu``, ``logvar``: the
    estimator's output for ``s_i`` (``B×c_dim``); ``weights``: ``B``.
    """
    inv_var = torch.exp(-logvar)
    positive = -0.5 * ((c - mu).pow(2) * inv_var).sum(dim=-1)
    if sampled:
        perm = torch.randperm(c.shape[0], device=c.device)
        negative = -0.5 * ((c[perm] - mu).pow(2) * inv_var).sum(dim=-1)
        return weighted_mean(positive, weights) - weighted_mean(negative, weights * weights[perm])
    total, total_sq, count = moment_sums
    count = count.clamp(min=1.0)
    mean_sq_dist = total_sq / count - 2 * mu * (total / count) + mu.pow(2)
    negative = -0.5 * (mean_sq_dist * inv_var).sum(dim=-1)
    return weighted_mean(positive - negative, weights)


def view_model_loss(
    views: list[Tensor],
    outputs: list,
    predictions: list[tuple[Tensor, Tensor]],
    c: Tensor,
    weights: Tensor,
    cfg: Stage2Config,
    moment_sums: Tensor | None = None,
) -> dict[str, Tensor]:
    """Stage 2, the view models' objective with the estimators θ held fixed:

        L_DD = Σ_v mean_w(‖x̂_v − x_v‖²) + β_s · mean_w(KL(q(s_v | x_v) ‖ N(0, I)))
               + λ · I_CLUB(s_v; c)

    ``outputs[v]``: the specific VAE's output (``mu``, ``logvar``, sampled ``s``,
    ``reconstruction`` from ``[s_v, c]``); ``predictions[v]``: the estimator's
    ``(μ_θ(s_v), log σ²_θ(s_v))`` on the *non-detached* ``s_v`` (the caller back-propagates
    into the view models only, so θ stays fixed). ``moment_sums`` (``V×3×c_dim``):
    :func:`code_moment_sums` of the global batch; ``None`` uses this batch's. Returns
    ``loss`` and ``recon_v``, ``kl_s{v}``, ``club_v`` for every view.
    """
    if moment_sums is None:
        moment_sums = code_moment_sums(c, weights)
    terms: dict[str, Tensor] = {}
    total = torch.zeros((), device=c.device)
    for v, (x, out, (mu, logvar)) in enumerate(zip(views, outputs, predictions, strict=True)):
        w = weights[:, v]
        recon = weighted_mean(squared_error(x, out.reconstruction), w)
        kl = weighted_mean(kl_standard_normal(out.mu.float(), out.logvar.float()), w)
        mi = club_upper_bound(mu, logvar, c, w, moment_sums[v], cfg.club_sampled)
        total = total + recon + cfg.beta_s * kl + cfg.club_weight * mi
        terms.update({f"recon_{v}": recon, f"kl_s{v}": kl, f"club_{v}": mi})
    terms["loss"] = total
    return terms
