"""Issue 21's sizing rules: what the defaults derive from the data (mrdd/config.py)."""

from __future__ import annotations

import pytest
import torch

from mrdd.config import BackboneConfig, ConfigError, Stage1Config, Stage2Config
from mrdd.nn.blocks import make_decoder, make_encoder


@pytest.mark.parametrize(
    ("shape", "mults"),
    [
        ((1, 32, 32), [1, 2, 4]),  # the paper's three levels, an 8×8 grid
        ((1, 16, 16), [1, 2, 4]),  # small images keep them (two were no better on val)
        ((3, 64, 64), [1, 2, 4, 8]),  # one more per doubling: the paper's 64×64 setting
        ((3, 128, 128), [1, 2, 4, 8, 16]),
        ((1, 28, 28), [1, 2, 4]),  # 28 / 4 = 7
        ((1, 32, 96), [1, 2, 4]),  # the smaller side decides
        ((1, 30, 30), [1, 2]),  # 30 / 4 is not whole: one level fewer, no refusal
        ((1, 15, 15), [1]),
        ((3, 1024, 1024), [1, 2, 4, 8, 16]),  # at most five levels
    ],
)
def test_conv_levels_follow_the_image_side(shape, mults):
    assert BackboneConfig().mults_for(shape) == mults


def test_a_64x64_view_gets_four_levels_and_an_8x8_grid():
    cfg = BackboneConfig(base_width=2)
    encoder = make_encoder((3, 64, 64), cfg)
    assert encoder.out_features == cfg.latent_channels * 8 * 8
    strided = [
        m for m in encoder.modules() if isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2)
    ]
    assert len(strided) == 3
    decoder = make_decoder(10, (3, 64, 64), cfg)
    assert decoder(torch.zeros(2, 10)).shape == (2, 3, 64, 64)


def test_set_channel_mults_win_over_the_rule():
    assert BackboneConfig(channel_mults=[1, 2, 4]).mults_for((1, 16, 16)) == [1, 2, 4]


@pytest.mark.parametrize(
    ("dim", "hidden"),
    [(10, [64, 32]), (16, [64, 32]), (17, [128, 64]), (49, [256, 128]), (84, [384, 192])]
    + [(112, [448, 224]), (113, [512, 256]), (649, [512, 256])],
)
def test_mlp_widths_follow_the_vector_dimension(dim, hidden):
    assert BackboneConfig().hidden_for(dim) == hidden
    encoder = make_encoder((dim,), BackboneConfig())
    assert encoder.out_features == hidden[-1]
    assert make_decoder(5, (dim,), BackboneConfig())(torch.zeros(3, 5)).shape == (3, dim)


def test_set_mlp_widths_win_over_the_rule():
    assert BackboneConfig(mlp_hidden=[32, 16, 8]).hidden_for(10) == [32, 16, 8]


@pytest.mark.parametrize(
    ("shapes", "patch"),
    [
        ([(1, 32, 32), (1, 32, 32)], 2),  # the value chosen on val for 32×32
        ([(1, 16, 16)], 2),  # small images keep it (1 was no better on val)
        ([(1, 8, 8)], 2),
        ([(3, 64, 64)], 4),  # the paper's for 64×64
        ([(3, 64, 64), (1, 32, 32)], 2),  # the smallest image decides
        ([(3, 224, 224)], 14),
        ([(1, 80, 80), (1, 160, 160)], 5),  # 80 // 16 = 5 divides both
        ([(1, 96, 96), (1, 80, 80)], 4),  # 5 does not divide 96, 4 divides both
        ([(1, 96, 96), (1, 72, 72)], 4),  # 72 // 16 = 4 divides both
        ([(1, 45, 45)], 1),  # 2 does not divide 45
        ([(10,), (20,)], 1),  # vectors only: masking is per feature
    ],
)
def test_mask_patch_size_follows_the_image_side(shapes, patch):
    assert Stage1Config().patch_for(shapes) == patch
    assert Stage1Config(mask_patch_size=4).patch_for(shapes) == 4


@pytest.mark.parametrize(
    ("n_train", "stage1_epochs", "stage2_epochs"),
    [
        (3600, 30, 15),  # the default dataset: the budget it had in epochs
        (1000, 112, 60),  # 15 and 7 steps an epoch: 1680 / 15, 420 / 7
        (1294, 84, 42),
        (409, 280, 140),
        (60000, 2, 1),
    ],
)
def test_a_step_budget_gives_every_dataset_the_same_number_of_steps(
    n_train, stage1_epochs, stage2_epochs
):
    """stage1.steps=1680, stage2.steps=420: the default's 30 and 15 epochs of 3,600 samples."""
    stage1, stage2 = Stage1Config(steps=1680), Stage2Config(steps=420)
    assert stage1.epochs_for(n_train // stage1.batch_size) == stage1_epochs
    assert stage2.epochs_for(n_train // stage2.batch_size) == stage2_epochs


def test_the_default_budget_is_epochs_whatever_the_size():
    """Steps are opt-in: on the suite's small sets they scored lower on val (issue 21)."""
    assert Stage1Config().steps is None and Stage2Config().steps is None
    assert Stage1Config().epochs_for(6) == 30 and Stage2Config().epochs_for(3) == 15
    assert Stage1Config(steps=10).epochs_for(1000) == 1  # at least one epoch


def test_a_warmup_as_long_as_the_derived_budget_is_refused_naming_both():
    with pytest.raises(ConfigError, match=r"^stage1.warmup_epochs=2 is not shorter than the 2 "):
        Stage1Config(steps=1680, warmup_epochs=2).epochs_for(1000)  # 1680 / 1000 → 2 epochs
    with pytest.raises(ConfigError, match="stage2.steps=420 gives on this data"):
        Stage2Config(steps=420, warmup_epochs=1).epochs_for(420)
