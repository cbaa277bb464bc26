import math

import pytest
import torch

from mrdd.config import ConfigError
from mrdd.models import drop_views_per_sample, mask_view, mask_views


def _zeroed_patches(masked: torch.Tensor, p: int) -> torch.Tensor:
    """Per-sample count of p×p patches that are entirely zero (inputs are strictly positive)."""
    n, c, h, w = masked.shape
    patches = masked.reshape(n, c, h // p, p, w // p, p)
    return (patches == 0).all(dim=(1, 3, 5)).flatten(1).sum(1)


@pytest.mark.parametrize("ratio", [0.1, 0.5, 0.7, 0.9])
@pytest.mark.parametrize("p", [2, 4])
def test_exactly_floor_r_n_patches_are_zeroed(ratio, p):
    x = torch.rand(32, 3, 16, 16) + 0.1  # strictly positive: a zero means masked
    masked = mask_view(x, ratio, p)
    n_patches = (16 // p) ** 2
    assert (_zeroed_patches(masked, p) == math.floor(ratio * n_patches)).all()


def test_masking_is_patch_aligned_and_keeps_the_rest_unchanged():
    x = torch.rand(8, 2, 8, 8) + 0.1
    masked = mask_view(x, 0.5, 2)
    zero = masked == 0
    # every zero pixel belongs to an all-zero 2×2 patch across all channels
    patch_zero = zero.reshape(8, 2, 4, 2, 4, 2).all(dim=(1, 3, 5))
    expanded = patch_zero.repeat_interleave(2, 1).repeat_interleave(2, 2).unsqueeze(1)
    assert torch.equal(zero, expanded.expand_as(zero))
    assert torch.equal(masked[~zero], x[~zero])


def test_masks_are_independent_across_samples_and_views():
    x = torch.rand(64, 1, 8, 8) + 0.1
    a, b = mask_views([x, x], 0.5, 2)
    patterns = {tuple((a[i] == 0).flatten().tolist()) for i in range(64)}
    assert len(patterns) > 60  # identical masks for many samples would be a bug
    assert not torch.equal(a == 0, b == 0)


def test_ratio_zero_is_identity():
    x = torch.rand(4, 1, 8, 8)
    assert mask_view(x, 0.0, 2) is x


def test_vector_views_zero_the_same_fraction_of_entries():
    x = torch.rand(10, 47) + 0.1
    masked = mask_view(x, 0.7, 2)
    assert ((masked == 0).sum(1) == math.floor(0.7 * 47)).all()


def test_bad_ratio_and_patch_size_are_refused():
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        mask_view(torch.rand(2, 1, 8, 8), 1.0, 2)
    with pytest.raises(ConfigError, match="does not divide"):
        mask_view(torch.rand(2, 1, 9, 9), 0.5, 2)


def test_view_dropout_keeps_a_non_empty_subset_of_the_present_views():
    torch.manual_seed(0)
    weights = (torch.rand(4000, 4) < 0.8).float()
    weights[:, 0] = 1.0  # every sample has a view
    weights[:5] = torch.tensor([1.0, 0.0, 0.0, 0.0])  # one present view: nothing to drop
    kept = drop_views_per_sample(weights, 0.5)
    assert (kept.sum(1) >= 1).all() and (kept <= weights).all()  # a subset, never empty
    assert torch.equal(kept[:5], weights[:5])
    changed = (kept != weights).any(1)
    droppable = weights.sum(1) > 1
    assert not changed[~droppable].any()
    assert changed[droppable].float().mean().item() == pytest.approx(0.5, abs=0.03)
    assert (kept[changed].sum(1) < weights[changed].sum(1)).all()  # a proper subset
    full = weights.sum(1) == 4  # four present views keep 1, 2 or 3, about equally often
    counts = torch.bincount(kept[changed & full].sum(1).long(), minlength=4)[1:]
    assert counts.min() > 0.8 * counts.max()


def test_view_dropout_rate_zero_is_identity_one_drops_every_two_view_sample_to_one_view():
    weights = torch.ones(100, 2)
    assert drop_views_per_sample(weights, 0.0) is weights
    kept = drop_views_per_sample(weights, 1.0)
    assert torch.equal(kept.sum(1), torch.ones(100))
    assert 30 < kept[:, 0].sum().item() < 70  # which view is kept is random


def test_view_dropout_is_deterministic_under_its_generator_and_refuses_bad_rates():
    weights = torch.ones(64, 3)
    draws = [
        drop_views_per_sample(weights, 0.5, torch.Generator().manual_seed(s)) for s in (1, 1, 2)
    ]
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])
    for rate in (-0.1, 1.5):
        with pytest.raises(ConfigError, match=r"stage1.view_dropout must be in \[0, 1\]"):
            drop_views_per_sample(weights, rate)
