import pytest
import scipy.ndimage
import torch
from torch.distributions import Normal, kl_divergence

from mrdd.config import BackboneConfig, ConfigError, ModelConfig
from mrdd.data import edge_map, edge_views
from mrdd.models import CLUB, MRDD, ConsistencyModel, estimator_loss, kl_standard_normal
from mrdd.nn import make_decoder, make_encoder


def test_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(7, 5, generator=g), torch.randn(7, 5, generator=g)
    expected = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(kl_standard_normal(mu, logvar), expected)


def test_edge_view_equals_scipy_grey_dilation_minus_image():
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(3, 1, 28, 28, generator=g) > 0.7).float() * torch.rand(3, 1, 28, 28)
    ours = edge_map(x)
    for i in range(3):
        img = x[i, 0].numpy()
        ref = scipy.ndimage.grey_dilation(img, size=3) - img
        torch.testing.assert_close(ours[i, 0], torch.from_numpy(ref))


def test_edge_views_resize_and_range():
    x = torch.rand(2, 1, 28, 28)
    digit, edge = edge_views(x, 32)
    assert digit.shape == edge.shape == (2, 1, 32, 32)
    assert edge.min() >= 0 and edge.max() <= 1 and digit.max() <= 1


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_encoder_decoder_shapes(size, channels):
    cfg = BackboneConfig(base_width=4, channel_mults=[1, 2, 4], num_blocks=1, latent_channels=8)
    enc = make_encoder((channels, size, size), cfg)
    feats = enc(torch.rand(2, channels, size, size))
    assert feats.shape == (2, 8 * (size // 4) ** 2) == (2, enc.out_features)
    dec = make_decoder(10, (channels, size, size), cfg)
    out = dec(torch.randn(2, 10))
    assert out.shape == (2, channels, size, size)
    assert out.min() >= 0 and out.max() <= 1


def test_paper_edge_mnist_backbone_gives_an_8x8x8_grid():
    cfg = BackboneConfig()  # width 16, [1, 2, 4], 3 blocks, 8 latent channels
    assert make_encoder((1, 32, 32), cfg).out_features == 8 * 8 * 8


def test_vector_views_get_mlps():
    cfg = BackboneConfig(mlp_hidden=[32, 16])
    enc = make_encoder((76,), cfg)
    assert enc(torch.rand(3, 76)).shape == (3, 16)
    assert make_decoder(5, (76,), cfg)(torch.rand(3, 5)).shape == (3, 76)


def test_indivisible_image_size_is_refused():
    with pytest.raises(ConfigError, match="divisible by 4"):
        make_encoder((1, 30, 30), BackboneConfig(channel_mults=[1, 2, 4]))


def test_levels_from_the_data_fit_an_odd_image_size():
    """channel_mults null: 30 / 4 is not whole, so two levels (to 15), and no refusal."""
    encoder = make_encoder((1, 30, 30), BackboneConfig(base_width=4))
    assert encoder(torch.rand(2, 1, 30, 30)).shape == (2, 8 * 15 * 15)


def test_same_shape_views_share_one_encoder_and_mixed_shapes_get_their_own():
    cfg = ModelConfig(backbone=BackboneConfig(base_width=4, num_blocks=1, mlp_hidden=[8]))
    assert len(ConsistencyModel([(1, 32, 32), (1, 32, 32)], cfg).encoders) == 1
    mixed = ConsistencyModel([(1, 32, 32), (6,), (1, 32, 32), (6,), (9,)], cfg)
    assert mixed.groups == [[0, 2], [1, 3], [4]]
    views = [torch.rand(3, 1, 32, 32), torch.rand(3, 6), torch.rand(3, 1, 32, 32)]
    views += [torch.rand(3, 6), torch.rand(3, 9)]
    out = mixed.eval()(views)
    assert out.c.shape == (3, cfg.c_dim)
    assert [r.shape[1:] for r in out.reconstructions] == [v.shape[1:] for v in views]


def test_eval_mode_uses_the_posterior_mean():
    cfg = ModelConfig(backbone=BackboneConfig(base_width=4, num_blocks=1))
    model = ConsistencyModel([(1, 32, 32)] * 2, cfg).eval()
    views = [torch.rand(4, 1, 32, 32) for _ in range(2)]
    a, b = model(views), model(views)
    assert torch.equal(a.c, a.mu) and torch.equal(a.c, b.c)


def _fit_club(s: torch.Tensor, c: torch.Tensor, steps: int = 300) -> CLUB:
    torch.manual_seed(0)
    club = CLUB(s.shape[1], c.shape[1], 32)
    opt = torch.optim.Adam(club.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        estimator_loss([club(s)], c, torch.ones(len(s), 1)).backward()
        opt.step()
    return club


def test_club_is_near_zero_for_independent_and_positive_for_dependent_variables():
    g = torch.Generator().manual_seed(0)

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        s = torch.randn(n, 4, generator=g)
        independent = torch.randn(n, 3, generator=g)
        dependent = s[:, :3] + 0.1 * torch.randn(n, 3, generator=g)
        return s, independent, dependent

    s, independent, dependent = sample(2048)
    club_indep, club_dep = _fit_club(s, independent), _fit_club(s, dependent)
    s, independent, dependent = sample(2048)  # score on fresh samples, not the fitted ones
    with torch.no_grad():
        mi_indep = club_indep.mi_upper_bound(s, independent)
        mi_dep = club_dep.mi_upper_bound(s, dependent)
        mi_dep_sampled = club_dep.mi_upper_bound(s, dependent, sampled=True)
    assert abs(mi_indep.item()) < 0.1
    # true I = 3 · 0.5·log(1 + 1/0.01) ≈ 6.9 nats; CLUB is an upper bound, clearly positive
    assert mi_dep.item() > 3.0
    assert mi_dep_sampled.item() > 3.0


def test_club_all_pairs_matches_the_explicit_double_sum():
    torch.manual_seed(0)
    club = CLUB(3, 2, 8)
    s, c = torch.randn(6, 3), torch.randn(6, 2)
    mu, logvar = club.mu(s), club.logvar(s)
    log_q = -0.5 * ((c[None, :, :] - mu[:, None, :]) ** 2 / logvar.exp()[:, None, :]).sum(-1)
    expected = log_q.diagonal().mean() - log_q.mean()
    torch.testing.assert_close(club.mi_upper_bound(s, c), expected)


def test_mrdd_keeps_the_consistency_model_in_eval_mode():
    cfg = ModelConfig(backbone=BackboneConfig(base_width=4, num_blocks=1))
    model = MRDD([(1, 32, 32)] * 2, cfg).train()
    assert model.specific.training and not model.consistency.training
    assert not any(p.requires_grad for p in model.consistency.parameters())
