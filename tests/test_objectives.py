"""The objectives of mrdd.models.objectives against hand-computed values and invariants."""

import math

import pytest
import torch

from mrdd.config import Stage1Config, Stage2Config
from mrdd.models import (
    CLUB,
    SpecificOutput,
    club_upper_bound,
    code_moment_sums,
    consistency_loss,
    estimator_loss,
    gaussian_log_density,
    view_model_loss,
    weighted_mean,
)


def test_weighted_mean_by_hand():
    values = torch.tensor([1.0, 2.0, 3.0, 10.0])
    assert weighted_mean(values, torch.tensor([1.0, 1.0, 1.0, 0.0])).item() == 2.0
    assert weighted_mean(values, torch.ones(4)).item() == 4.0
    assert weighted_mean(values, torch.zeros(4)).item() == 0.0  # no sample: 0, not NaN


def test_consistency_loss_by_hand():
    """Two samples, one 2-feature view and one 1-feature view; sample 1 lacks view 1."""
    cfg = Stage1Config(alpha=2.0, beta_c=0.5)
    views = [torch.tensor([[1.0, 0.0], [0.0, 0.0]]), torch.tensor([[1.0], [5.0]])]
    recons = [torch.tensor([[0.0, 0.0], [0.0, 2.0]]), torch.tensor([[3.0], [0.0]])]
    mu, logvar = torch.tensor([[1.0], [0.0]]), torch.zeros(2, 1)
    weights = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    terms = consistency_loss(mu, logvar, recons, views, weights, cfg)
    # view 0: errors 1 and 4 -> 2.5; view 1: only sample 0 counts, error 4
    assert terms["recon_0"].item() == 2.5 and terms["recon_1"].item() == 4.0
    # KL per sample: 0.5·(μ² + 1 − 1 − 0) = 0.5 and 0 -> mean 0.25
    assert terms["kl_c"].item() == 0.25
    assert terms["loss"].item() == pytest.approx(2.0 * 6.5 + 0.5 * 0.25)


def test_gaussian_log_density_by_hand():
    c, mu, logvar = torch.tensor([[1.0]]), torch.tensor([[0.0]]), torch.tensor([[math.log(4.0)]])
    expected = -0.5 * (1.0 / 4.0 + math.log(4.0) + math.log(2 * math.pi))
    assert gaussian_log_density(c, mu, logvar).item() == pytest.approx(expected)


def test_estimator_loss_sums_views_and_ignores_absent_samples():
    c = torch.tensor([[0.0], [3.0]])
    prediction = (torch.zeros(2, 1), torch.zeros(2, 1))
    weights = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    per_sample = gaussian_log_density(c, *prediction)
    expected = -(per_sample.mean() + per_sample[0])
    torch.testing.assert_close(estimator_loss([prediction, prediction], c, weights), expected)


def _explicit_club(mu, logvar, c):
    """mean_i log q(c_i|s_i) − mean_{i,j} log q(c_j|s_i), written as the double sum."""
    log_q = -0.5 * ((c[None] - mu[:, None]) ** 2 / logvar.exp()[:, None]).sum(-1)
    return log_q.diagonal().mean() - log_q.mean()


def test_club_bound_with_weights_equals_the_bound_on_the_present_samples():
    torch.manual_seed(0)
    mu, logvar, c = torch.randn(7, 3), torch.randn(7, 3).tanh(), torch.randn(7, 3)
    present = torch.tensor([1, 0, 1, 1, 0, 1, 1], dtype=torch.bool)
    w = present.float()
    got = club_upper_bound(mu, logvar, c, w, code_moment_sums(c, w[:, None])[0])
    want = _explicit_club(mu[present], logvar[present], c[present])
    torch.testing.assert_close(got, want)


def test_code_moment_sums_of_shards_add_up_to_the_whole_batch():
    """What data parallelism relies on: ranks sum their shards' moments."""
    torch.manual_seed(0)
    c, w = torch.randn(10, 4), (torch.rand(10, 2) > 0.3).float()
    whole = code_moment_sums(c, w)
    shards = code_moment_sums(c[:6], w[:6]) + code_moment_sums(c[6:], w[6:])
    assert whole.shape == (2, 3, 4)
    torch.testing.assert_close(shards, whole)
    torch.testing.assert_close(whole[1, 2], w[:, 1].sum().expand(4))


def test_sampled_club_pairs_each_sample_with_one_permuted_code():
    torch.manual_seed(0)
    mu, logvar, c = torch.randn(5, 2), torch.zeros(5, 2), torch.randn(5, 2)
    w = torch.ones(5)
    torch.manual_seed(3)
    got = club_upper_bound(mu, logvar, c, w, code_moment_sums(c, w[:, None])[0], sampled=True)
    torch.manual_seed(3)
    perm = torch.randperm(5)
    positive = -0.5 * ((c - mu) ** 2).sum(-1)
    negative = -0.5 * ((c[perm] - mu) ** 2).sum(-1)
    torch.testing.assert_close(got, (positive - negative).mean())


def test_view_model_loss_is_recon_plus_weighted_kl_and_club():
    torch.manual_seed(0)
    cfg = Stage2Config(beta_s=0.3, club_weight=2.0)
    club = CLUB(3, 2, 8)
    x = torch.rand(6, 4)
    mu, logvar = torch.randn(6, 3), torch.randn(6, 3) * 0.1
    out = SpecificOutput(mu, logvar, mu, torch.rand(6, 4))
    c, w = torch.randn(6, 2), torch.ones(6, 1)
    terms = view_model_loss([x], [out], [club(mu)], c, w, cfg)
    recon = ((out.reconstruction - x) ** 2).sum(1).mean()
    kl = (0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)).mean()
    mi = _explicit_club(*club(mu), c)
    torch.testing.assert_close(terms["recon_0"], recon)
    torch.testing.assert_close(terms["kl_s0"], kl)
    torch.testing.assert_close(terms["club_0"], mi)
    torch.testing.assert_close(terms["loss"], recon + 0.3 * kl + 2.0 * mi)
