"""Every rule has one home: the places that apply a rule call it, so they cannot diverge."""

import math

import pytest
import torch
from torch import nn

from mrdd.config import (
    GROUP_NORM_GROUPS,
    BackboneConfig,
    ConfigError,
    RunConfig,
    group_norm_groups,
)
from mrdd.data import DatasetSplits, MultiViewData
from mrdd.data.base import stratified_holdout, stratified_split
from mrdd.data.missing import random_availability, random_proper_subsets
from mrdd.eval.metrics import REDUNDANCY_TEST_FRACTION, redundancy_r2
from mrdd.models import fill_absent
from mrdd.models.masking import drop_views_per_sample, mask_view
from mrdd.nn.blocks import make_encoder
from mrdd.train.checkpoint import FORMAT_VERSION, checkpoint_payload
from mrdd.train.validate import _check_clusterable, validate_against_data
from mrdd.version import __version__

# --- ranges: the config and the code that draws with the value refuse alike ------------


def _config_error(section: dict) -> str:
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict(section)
    return str(err.value)


def test_missing_rate_1_is_refused_by_the_config_and_by_the_mask_sampler_alike():
    """The decision: [0, 1). At 1 no sample keeps all its views (with two views none shows
    both), which docs/configuration.md and docs/datasets.md already said."""
    from_config = _config_error({"dataset": {"name": "edge_mnist_5k", "missing_rate": 1.0}})
    with pytest.raises(ConfigError) as err:
        random_availability(10, 2, 1.0, seed=0)
    assert str(err.value) == from_config
    assert from_config.startswith("dataset.missing_rate must be in [0, 1)")
    assert random_availability(10, 2, 0.99, seed=0).any(dim=1).all()


@pytest.mark.parametrize(
    ("key", "bad", "apply"),
    [
        ("mask_ratio", 1.0, lambda r: mask_view(torch.rand(2, 1, 8, 8), r, 2)),
        ("mask_ratio", -0.1, lambda r: mask_view(torch.rand(2, 4), r, 2)),
        ("view_dropout", 1.5, lambda r: drop_views_per_sample(torch.ones(4, 2), r)),
        ("view_dropout", -0.1, lambda r: drop_views_per_sample(torch.ones(4, 2), r)),
    ],
)
def test_stage1_rates_are_refused_with_the_configs_own_message(key, bad, apply):
    with pytest.raises(ConfigError) as err:
        apply(bad)
    assert str(err.value) == _config_error({"stage1": {key: bad}})


def test_patch_divisibility_has_one_message_before_training_and_in_masking():
    views = [torch.rand(16, 1, 9, 9), torch.rand(16, 5)]
    data = MultiViewData(views, torch.arange(16) % 2, "nines")
    splits = DatasetSplits(train=data, test=data, num_classes=2, name="nines")
    cfg = RunConfig.from_dict(
        {"stage1": {"mask_patch_size": 2, "batch_size": 8}, "run": {"device": "cpu"}}
    )
    with pytest.raises(ConfigError) as before:
        validate_against_data(cfg, splits)
    with pytest.raises(ConfigError) as during:
        mask_view(views[0], 0.5, 2)
    expected = "stage1.mask_patch_size=2 does not divide the images of view 0 (9×9) in {}; "
    expected += "masking cuts images into whole patches. Use one of [1, 3, 9]."
    assert str(before.value) == expected.format("nines")
    assert str(during.value) == expected.format("the data")
    _check_clusterable("train", True, splits)  # the rest of the validation has no say here


# --- GroupNorm: the config checks the group count the networks build with ---------------


@pytest.mark.parametrize("base_width", [4, 8, 16])
def test_group_norm_layers_use_the_configs_group_count(base_width):
    cfg = BackboneConfig(base_width=base_width, channel_mults=[1, 2], norm="group")
    cfg.validate()
    norms = [m for m in make_encoder((1, 8, 8), cfg).modules() if isinstance(m, nn.GroupNorm)]
    assert norms and all(m.num_groups == group_norm_groups(m.num_channels) for m in norms)
    assert {m.num_groups for m in norms} <= {min(GROUP_NORM_GROUPS, w) for w in (4, 8, 16, 32)}


def test_group_norm_widths_that_the_groups_do_not_divide_are_refused():
    assert group_norm_groups(4) == 4 and group_norm_groups(24) == GROUP_NORM_GROUPS == 8
    with pytest.raises(ConfigError, match=r"splits channels into 8 groups.*\[12, 24\]"):
        BackboneConfig(base_width=12, channel_mults=[1, 2], norm="group").validate()


# --- one sampler of proper subsets of views ---------------------------------------------


def test_proper_subsets_are_non_empty_proper_and_uniform_in_size():
    present = torch.ones(6000, 4, dtype=torch.bool)
    present[:1000, 1:] = False  # one present view: kept as it is
    present[1000:2000, 3] = False  # three present views
    kept = random_proper_subsets(present, torch.Generator().manual_seed(0))
    assert torch.equal(kept[:1000], present[:1000])
    assert not (kept & ~present).any() and kept.any(dim=1).all()
    sizes = kept.sum(dim=1)
    assert (sizes[1000:] < present[1000:].sum(dim=1)).all()  # proper
    three = torch.bincount(sizes[1000:2000], minlength=3)[1:]  # 1 or 2 of 3, ~500 each
    four = torch.bincount(sizes[2000:], minlength=4)[1:]  # 1, 2 or 3 of 4, ~1333 each
    assert three.min() > 0.85 * three.max() and four.min() > 0.85 * four.max()
    assert kept[2000:].float().mean(dim=0).std() < 0.02  # no view favoured


def test_missing_view_masks_are_drawn_by_that_sampler():
    n, views, rate, seed = 50, 3, 0.4, 7
    g = torch.Generator().manual_seed(seed)
    rows = torch.randperm(n, generator=g)[: round(rate * n)]
    expected = torch.ones(n, views, dtype=torch.bool)
    expected[rows] = random_proper_subsets(torch.ones(len(rows), views, dtype=torch.bool), g)
    assert torch.equal(random_availability(n, views, rate, seed), expected)


# --- one stratified sampler, one rounding rule ------------------------------------------


def test_the_stratified_rounding_rule_gives_the_requested_total_by_largest_remainders():
    labels = torch.arange(20).repeat_interleave(72)  # coil20: 20 classes of 72 poses
    train, test = stratified_split(labels, 0.2, seed=0)
    per_class = torch.bincount(labels[test], minlength=20)
    assert len(test) == 288 == round(0.2 * 1440)  # 14.4 per class: not 14 × 20 = 280
    assert per_class[:8].tolist() == [15] * 8 and per_class[8:].tolist() == [14] * 12
    assert torch.equal(torch.cat([train, test]).sort().values, torch.arange(1440))


def test_small_classes_give_one_sample_each_in_the_order_of_their_remainders():
    labels = torch.tensor([0] * 5 + [1] * 3 + [2] * 2)
    keep, held = stratified_holdout(labels, 0.3, seed=0)  # quotas 1.5, 0.9, 0.6: 3 in all
    assert torch.bincount(labels[held], minlength=3).tolist() == [1, 1, 1]
    keep, held = stratified_holdout(labels, 0.1, seed=0)  # 1 sample, from the largest quota
    assert labels[held].tolist() == [0] and len(keep) == 9


# --- the redundancy hold-out, the imputation merge, the checkpoint layout ---------------


def test_the_redundancy_regressions_hold_out_the_protocols_share():
    x = torch.randn(40, 3)
    assert REDUNDANCY_TEST_FRACTION == 0.25
    assert redundancy_r2(x, x[:, :1], seed=1) == redundancy_r2(x, x[:, :1], 1, 0.25)


def test_the_imputation_merge_keeps_present_samples_and_fills_absent_ones():
    views = [torch.zeros(3, 1, 2, 2), torch.ones(3, 2, dtype=torch.float64)]
    predicted = [torch.full((3, 1, 2, 2), 5.0), torch.full((3, 2), 7.0)]
    available = torch.tensor([[True, False], [False, True], [True, True]])
    filled = fill_absent(views, predicted, available)
    assert filled[0][:, 0, 0, 0].tolist() == [0.0, 5.0, 0.0]
    assert filled[1][:, 0].tolist() == [7.0, 1.0, 1.0] and filled[1].dtype == torch.float64


def test_every_checkpoint_kind_shares_one_layout():
    cfg = RunConfig()
    payload = checkpoint_payload("mrdd", {"w": torch.zeros(1)}, cfg, [(1, 8, 8)], None, epoch=3)
    assert payload == {
        "format": FORMAT_VERSION,
        "kind": "mrdd",
        "mrdd_version": __version__,
        "config": cfg.to_dict(),
        "view_shapes": [[1, 8, 8]],
        "data": None,
        "state_dict": payload["state_dict"],
        "epoch": 3,
    }
    assert math.isclose(float(payload["state_dict"]["w"]), 0.0)
