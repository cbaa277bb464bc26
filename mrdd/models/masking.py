"""Random masking of views for masked cross-view prediction (docs/method.md, "Stage 1").

Images are cut into non-overlapping ``p×p`` patches and exactly
``floor(ratio · n_patches)`` patches per sample, chosen uniformly at random and
independently per sample and view, are set to 0 (all channels). Vector views
zero the same fraction of their entries. Everything is one vectorised op on the
patch grid: no Python loop over samples.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mrdd.config import ConfigError


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


def mask_view(x: Tensor, ratio: float, patch_size: int, generator=None) -> Tensor:
    """A masked copy of one batch of a view (images ``N×C×H×W`` or vectors ``N×D``)."""
    if not 0.0 <= ratio < 1.0:
        raise ConfigError(f"mask ratio must be in [0, 1), got {ratio}.")
    if ratio == 0.0:
        return x
    if x.ndim == 2:
        return x * random_keep_mask(x.shape[0], x.shape[1], ratio, x.device, generator).to(x.dtype)
    n, _, h, w = x.shape
    if h % patch_size or w % patch_size:
        raise ConfigError(
            f"train.mask_patch_size={patch_size} does not divide the {h}×{w} images; "
            "pick a patch size that divides both sides."
        )
    gh, gw = h // patch_size, w // patch_size
    keep = random_keep_mask(n, gh * gw, ratio, x.device, generator).view(n, 1, gh, gw)
    keep = keep.repeat_interleave(patch_size, dim=2).repeat_interleave(patch_size, dim=3)
    return x * keep.to(x.dtype)


def mask_views(views: list[Tensor], ratio: float, patch_size: int, generator=None) -> list[Tensor]:
    """Mask every view independently (see :func:`mask_view`)."""
    return [mask_view(x, ratio, patch_size, generator) for x in views]


def drop_views_per_sample(weights: Tensor, rate: float, generator=None) -> Tensor:
    """Whole-view dropout: the ``B×V`` weights with, in a fraction ``rate`` of the samples
    (each independently), a random non-empty proper subset of the present views kept.

    A dropped sample with ``m ≥ 2`` present views keeps ``k ~ U{1..m-1}`` of them, chosen
    uniformly; a sample with one present view keeps it. Stage 1 encodes ``c`` from the kept
    views and still reconstructs every present view, so ``c`` must be inferable from any
    subset: the situation of a sample whose views are missing at test time.
    """
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"view dropout rate must be in [0, 1], got {rate}.")
    if rate == 0.0:
        return weights
    present = weights > 0
    n_present = present.sum(dim=1)
    shape, device = weights.shape, weights.device
    dropped = (torch.rand(shape[0], device=device, generator=generator) < rate) & (n_present > 1)
    # rank the present views of each sample at random (absent ones last) and keep the k first
    scores = torch.rand(shape, device=device, generator=generator).masked_fill(~present, 2.0)
    ranks = scores.argsort(dim=1).argsort(dim=1)
    u = torch.rand(shape[0], device=device, generator=generator)
    k = 1 + (u * (n_present - 1).clamp(min=1)).long().clamp(max=shape[1] - 1)
    keep = (ranks < k[:, None]) & present
    return torch.where(dropped[:, None], keep.to(weights.dtype) * weights, weights)
