"""Incomplete multi-view data: views dropped at random, for training and evaluation.

``missing_rate`` follows the usual definition of the incomplete multi-view
literature: it is the fraction of samples that lack at least one view. Each such
sample keeps a uniformly random non-empty proper subset of its views (with two
views: exactly one), so every sample keeps at least one view and a rate of 1.0
is allowed. Masks are drawn from a seeded generator, independently of torch's
global random state, so a run's data are the same with or without other draws.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from mrdd.data.base import DataError, DatasetSplits, MultiViewData


def random_availability(n: int, num_views: int, rate: float, seed: int) -> Tensor:
    """``n×num_views`` bool mask: a fraction ``rate`` of rows lose a random proper subset.

    Exactly ``round(rate·n)`` samples, chosen at random, are incomplete; each keeps
    ``k ~ U{1..V-1}`` views chosen at random.
    """
    if not 0.0 <= rate <= 1.0:
        raise DataError(f"missing_rate must be in [0, 1], got {rate}.")
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
    keep = torch.randint(1, num_views, (n_incomplete,), generator=g)
    ranks = torch.rand(n_incomplete, num_views, generator=g).argsort(dim=1).argsort(dim=1)
    available[rows] = ranks < keep[:, None]
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
