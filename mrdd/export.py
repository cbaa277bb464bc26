"""Every sample's codes as NumPy arrays, for downstream use (what ``scripts/encode.py`` writes).

>>> import mrdd
>>> from mrdd.export import encode_dataset
>>> trained = mrdd.load("outputs/2026-11-24/10-00-00")
>>> codes = encode_dataset(trained, trained.load_data(trained.config.dataset))
>>> sorted(codes)
['C', 'C+S_all', 'C+S_best', 'S_0', 'S_1', 'labels', 'split']

The codes are the posterior means of :meth:`mrdd.TrainedModel.representations`, batch by
batch, so they equal what a notebook gets from the same views.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
from torch import Tensor
from tqdm.auto import tqdm

from mrdd.api import TrainedModel
from mrdd.data import DataError, DatasetSplits, MultiViewData

#: The order in which a :class:`DatasetSplits`' splits are encoded (``val`` where it has one).
SPLIT_ORDER = ("train", "val", "test")


def encode_dataset(
    trained: TrainedModel,
    data: DatasetSplits | Mapping[str, MultiViewData],
    batch_size: int = 1000,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """The representations of every sample of ``data``, split after split.

    ``data`` is a dataset's splits, or named splits (``{"test": splits.test}``), as the
    loaders give them (for data other than the run's own, load them with
    :meth:`mrdd.TrainedModel.load_data`, which applies the run's preprocessing); their
    views must have the shapes the run was trained on. Returns float32 arrays ``C``, every
    ``S_v``, ``C+S_best`` and ``C+S_all`` (``C`` alone for a stage-1-only run), each
    ``N×dim``, plus ``labels`` (``N`` ints) and ``split`` (``N`` strings, the split of each
    row). Samples with missing views are encoded from the views they have. ``progress``
    shows a progress bar over the samples.
    """
    if batch_size <= 0:
        raise DataError(f"batch_size must be positive, got {batch_size}.")
    parts = _named_splits(data)
    check_views_fit(trained, parts)
    chunks: dict[str, list[np.ndarray]] = {}
    total = sum(len(split) for split in parts.values())
    with tqdm(total=total, unit="sample", desc="encoding", disable=not progress) as bar:
        for name, split in parts.items():
            for views, available, labels in _batches(split, batch_size):
                reps = trained.representations(views, available, prepared=True)
                for key, value in reps.items():
                    chunks.setdefault(key, []).append(value.float().cpu().numpy())
                chunks.setdefault("labels", []).append(labels.cpu().numpy())
                chunks.setdefault("split", []).append(np.full(len(labels), name))
                bar.update(len(labels))
    return {key: np.concatenate(arrays) for key, arrays in chunks.items()}


def check_views_fit(trained: TrainedModel, parts: Mapping[str, MultiViewData]) -> None:
    """Raise :class:`DataError` unless every split's views have the run's view shapes."""
    for name, split in parts.items():
        if split.view_shapes != trained.view_shapes:
            raise DataError(
                f"the {name} split of {split.name} has views of shapes {split.view_shapes}, but "
                f"the run was trained on views of shapes {trained.view_shapes}; encode a dataset "
                "with the same number of views and the same per-sample shape for each."
            )


def _named_splits(data: DatasetSplits | Mapping[str, MultiViewData]) -> dict[str, MultiViewData]:
    if isinstance(data, DatasetSplits):
        found = {name: getattr(data, name, None) for name in SPLIT_ORDER}
        return {name: split for name, split in found.items() if split is not None}
    if not data:
        raise DataError("no split to encode: pass a DatasetSplits or {name: MultiViewData}.")
    return dict(data)


def _batches(
    data: MultiViewData, batch_size: int
) -> Iterator[tuple[list[Tensor], Tensor | None, Tensor]]:
    """Consecutive ``(views, available or None, labels)`` batches of ``data``, in order."""
    for start in range(0, len(data), batch_size):
        rows = slice(start, start + batch_size)
        available = None if data.complete else data.available[rows]
        yield [x[rows] for x in data.views], available, data.labels[rows]
