"""Random masking of views for masked cross-view prediction (docs/method.md, "Stage 1").

Images are cut into non-overlapping ``p×p`` patches and exactly
``floor(ratio · n_patches)`` patches per sample, chosen uniformly at random and
independently per sample and view, are set to 0 (all channels). Vector views
zero the same fraction of their entries. Everything is one vectorised op on the
patch grid: no Python loop over samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from mrdd.config import ConfigError, check_mask_ratio, check_view_dropout
from mrdd.data.missing import random_proper_subsets


def random_keep_mask(
    batch: int, n_units: int, ratio: float, device: torch.device, generator=None
) -> Tensor:
    """Float ``batch×n_units`` mask with exactly ``floor(ratio·n_units)`` zeros per row."""
    n_masked = math.floor(ratio * n_units)
    keep = torch.ones(batch, n_units, device=device)
    if n_masked > 0:
        scores = torch.rand(batch, n_units, device=device, generator=generator)
        keep.scatter_(1, scores.topk(n_masked, dim=1).indices, 0.0)
    return keep


def check_patch_size(
    patch: int, view_shapes: Sequence[tuple[int, ...]], where: str = "the data"
) -> None:
    """The one rule of ``stage1.mask_patch_size``: it divides both sides of every image view
    (masking cuts images into whole patches). Checked against the data before training
    (:mod:`mrdd.train.validate`) and by :func:`mask_view`; the error lists the sizes that fit."""
    images = [(v, shape) for v, shape in enumerate(view_shapes) if len(shape) == 3]
    bad = [f"view {v} ({s[1]}×{s[2]})" for v, s in images if s[1] % patch or s[2] % patch]
    if bad:
        sides = [side for _, shape in images for side in shape[1:]]
        fits = [p for p in range(1, min(sides) + 1) if all(s % p == 0 for s in sides)]
        raise ConfigError(
            f"stage1.mask_patch_size={patch} does not divide the images of {', '.join(bad)} "
            f"in {where}; masking cuts images into whole patches. Use one of {fits}."
        )


def mask_view(x: Tensor, ratio: float, patch_size: int, generator=None) -> Tensor:
    """A masked copy of one batch of a view (images ``N×C×H×W`` or vectors ``N×D``)."""
    check_mask_ratio(ratio)
    if ratio == 0.0:
        return x
    if x.ndim == 2:
        return x * random_keep_mask(x.shape[0], x.shape[1], ratio, x.device, generator).to(x.dtype)
    n, _, h, w = x.shape
    check_patch_size(patch_size, [tuple(x.shape[1:])])
    gh, gw = h // patch_size, w // patch_size
    keep = random_keep_mask(n, gh * gw, ratio, x.device, generator).view(n, 1, gh, gw)
    keep = keep.repeat_interleave(patch_size, dim=2).repeat_interleave(patch_size, dim=3)
    return x * keep.to(x.dtype)


def mask_views(views: list[Tensor], ratio: float, patch_size: int, generator=None) -> list[Tensor]:
    """Mask every view independently (see :func:`mask_view`)."""
    return [mask_view(x, ratio, patch_size, generator) for x in views]


def drop_views_per_sample(weights: Tensor, rate: float, generator=None) -> Tensor:
    """Whole-view dropout: the ``B×V`` weights with, in a fraction ``rate`` of the samples
    (each independently), a random non-empty proper subset of the present views kept
    (:func:`mrdd.data.missing.random_proper_subsets`: ``k ~ U{1..m-1}`` of ``m ≥ 2``
    present views; a sample with one present view keeps it). Stage 1 encodes ``c`` from
    the kept views and still reconstructs every present view, so ``c`` must be inferable
    from any subset: the situation of a sample whose views are missing at test time.
    """
    check_view_dropout(rate)
    if rate == 0.0:
        return weights
    present = weights > 0
    dropped = torch.rand(weights.shape[0], device=weights.device, generator=generator) < rate
    keep = random_proper_subsets(present, generator)
    return torch.where(dropped[:, None], keep.to(weights.dtype) * weights, weights)
