"""Incomplete multi-view data: views dropped at random, for training and evaluation.

``missing_rate`` follows the usual definition of the incomplete multi-view
literature: it is the fraction of samples that lack at least one view. Each such
sample keeps a uniformly random non-empty proper subset of its views (with two
views: exactly one), so every sample keeps at least one view. The rate is in [0, 1)
(:func:`mrdd.config.check_missing_rate`, the rule ``dataset.missing_rate`` is checked
by too): at 1 no sample keeps all its views. Masks are drawn from a seeded generator,
independently of torch's global random state, so a run's data are the same with or
without other draws.

:func:`random_proper_subsets` is the one sampler of such subsets: these masks and
stage 1's whole-view dropout (:func:`mrdd.models.masking.drop_views_per_sample`) use it.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from mrdd.config import check_missing_rate
from mrdd.data.base import DataError, DatasetSplits, MultiViewData


def random_proper_subsets(present: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Per row of ``present`` (``B×V`` bool, the views a sample has), a uniformly random
    non-empty proper subset of its present views: ``k ~ U{1..m-1}`` of its ``m ≥ 2``
    present views, each subset of that size equally likely. A row with one present view
    keeps it. Draws ``B`` uniforms (the sizes) then ``B×V`` (the order of the views) from
    ``generator``, on ``present``'s device: with two views, the draws and masks of
    :func:`random_availability` before this sampler was shared, so the masks of a
    two-view dataset (and its recorded identity) are unchanged.
    """
    n_present = present.sum(dim=1)
    shape, device = present.shape, present.device
    u = torch.rand(shape[0], device=device, generator=generator)
    k = 1 + (u * (n_present - 1).clamp(min=1)).long().clamp(max=shape[1] - 1)
    # rank the present views of each sample at random (absent ones last) and keep the k first
    scores = torch.rand(shape, device=device, generator=generator).masked_fill(~present, 2.0)
    ranks = scores.argsort(dim=1).argsort(dim=1)
    keep = (ranks < k[:, None]) & present
    return torch.where((n_present > 1)[:, None], keep, present)


def random_availability(n: int, num_views: int, rate: float, seed: int) -> Tensor:
    """``n×num_views`` bool mask: a fraction ``rate`` of rows lose a random proper subset.

    Exactly ``round(rate·n)`` samples, chosen at random, are incomplete; each keeps
    ``k ~ U{1..V-1}`` views chosen at random (:func:`random_proper_subsets`).
    """
    check_missing_rate(rate)
    available = torch.ones(n, num_views, dtype=torch.bool)
    n_incomplete = round(rate * n)
    if n_incomplete == 0:
        return available
    if num_views < 2:
        raise DataError(
            f"missing_rate={rate} needs at least two views (a sample keeps one), "
            f"but the data have {num_views}."
        )
    g = torch.Generator().manual_seed(seed)
    rows = torch.randperm(n, generator=g)[:n_incomplete]
    available[rows] = random_proper_subsets(available[rows], g)
    return available


def drop_views(data: MultiViewData, rate: float, seed: int) -> MultiViewData:
    """``data`` with views dropped at ``rate`` (see :func:`random_availability`).

    Data that already miss views (a user-given mask) cannot be thinned further.
    """
    if rate == 0.0:
        return data
    if not data.complete:
        raise DataError(
            f"{data.name} already has missing views (an 'available' mask in the data); "
            "missing_rate would add to them. Use one or the other."
        )
    mask = random_availability(len(data), data.num_views, rate, seed)
    return data.with_available(mask.to(data.labels.device))


def drop_views_in_splits(splits: DatasetSplits, rate: float, seed: int) -> DatasetSplits:
    """Both splits with views dropped at ``rate`` (train and test drawn from different streams)."""
    return dataclasses.replace(
        splits,
        train=drop_views(splits.train, rate, seed),
        test=drop_views(splits.test, rate, seed + 1),
    )
