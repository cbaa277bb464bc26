"""Checks every dataset passes before any training, whichever loader produced it.

A dataset that decodes and has the right shapes can still make a run meaningless:
a view with no features or the same value in every sample carries nothing to learn,
and with fewer than two classes (or a test class never seen in training) every
clustering and classification score is void. Such data trains to the end and reports
numbers, so it is refused here, naming the source and what to do.

:func:`check_samples` runs on the whole dataset before it is split
(:func:`mrdd.data.common.make_splits`); :func:`check_splits` runs on the train/test
splits of every loader (:func:`mrdd.data.registry.load_dataset`), user-registered
ones included.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from mrdd.data.base import DataError, DatasetSplits, MultiViewData


def check_samples(
    views: Sequence[Tensor], labels: Tensor, class_names: Sequence[str], where: str
) -> None:
    """Refuse data with no samples, empty or constant views, or unusable labels.

    ``views``: ``N×…`` tensors; ``labels``: ``N`` class ids in ``0..len(class_names)-1``.
    """
    n = int(labels.shape[0]) if labels.ndim == 1 else -1
    if n == 0:
        raise DataError(
            f"{where}: the dataset holds no samples (0 labels); add samples before training."
        )
    _check_labels(labels, class_names, where)
    for v, x in enumerate(views):
        _check_view(x, v, where)


def _check_labels(labels: Tensor, class_names: Sequence[str], where: str) -> None:
    if labels.ndim != 1 or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise DataError(
            f"{where}: labels must be a 1-D array of integer class ids, got "
            f"{labels.dtype} of shape {tuple(labels.shape)}."
        )
    k = len(class_names)
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= k:
        raise DataError(
            f"{where}: labels range over {low}..{high}, but there are {k} class names; "
            f"class ids must lie in 0..{k - 1}."
        )
    present = torch.unique(labels)
    if len(present) < 2:
        only = class_names[int(present[0])]
        raise DataError(
            f"{where}: every sample has the label {only!r}; the evaluation (clustering, "
            "classification) needs at least two classes. Check the labels array or add "
            "samples of other classes."
        )


def _check_view(x: Tensor, v: int, where: str) -> None:
    per_sample = tuple(x.shape[1:])
    if x.ndim < 2 or 0 in per_sample:
        raise DataError(
            f"{where}: view_{v} has shape {tuple(x.shape)}, so its samples hold no values; "
            "every view needs at least one feature (or pixel). Drop the view or fill it."
        )
    flat = x.reshape(x.shape[0], -1)
    if x.shape[0] > 1 and bool((flat == flat[:1]).all()):
        raise DataError(
            f"{where}: view_{v} is the same in every sample (constant), so it carries no "
            "information; check that it was exported correctly, or drop it."
        )


def check_splits(splits: DatasetSplits, where: str) -> None:
    """Refuse splits that leave training or evaluation without enough classes or data.

    The training split needs two classes and every class of the test split (a test
    class never trained on cannot be recognised, and its scores would be void); the
    test split needs two classes; every view must be present in some training sample.
    (Neither split can be empty: :class:`MultiViewData` refuses that.)
    """
    names = splits.class_names or [str(k) for k in range(splits.num_classes)]
    train, test = (set(torch.unique(s.labels).tolist()) for s in (splits.train, splits.test))
    for split, classes in (("training", train), ("test", test)):
        if len(classes) < 2:
            raise DataError(
                f"{where}: the {split} split holds only the class "
                f"{_names(classes, names)}; both splits need at least two classes. Give "
                "every class more samples, or change the split (test_fraction, seed, or the "
                "split array)."
            )
    unseen = test - train
    if unseen:
        raise DataError(
            f"{where}: the class(es) {_names(unseen, names)} have test samples but no "
            "training sample; every test class must appear in training. Lower "
            "test_fraction, give those classes more samples, or fix the split array."
        )
    _check_views_present(splits.train, where)


def _check_views_present(data: MultiViewData, where: str) -> None:
    absent = [v for v in range(data.num_views) if not bool(data.available[:, v].any())]
    if absent:
        raise DataError(
            f"{where}: view(s) {absent} are absent in every training sample (see the "
            "'available' mask); a view needs training samples. Drop it or fix the mask."
        )


def _names(classes: set[int], names: Sequence[str]) -> str:
    return ", ".join(repr(names[k]) if k < len(names) else str(k) for k in sorted(classes))
