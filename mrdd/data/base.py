"""In-memory multi-view datasets.

A multi-view dataset is a list of view tensors that share their first (sample)
dimension, plus one integer label per sample. Everything lives in memory as
tensors: loaders do all decoding, edge extraction and resizing once, so a
training step only gathers rows by index (no per-item Python work).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from mrdd.data.identity import split_identity
from mrdd.errors import DataError

if TYPE_CHECKING:
    from mrdd.data.preprocess import Preprocessing


@dataclass
class MultiViewData:
    """Views and labels of one split.

    Attributes:
        views: one tensor per view, ``N×C×H×W`` (images in [0, 1]) or ``N×D`` (vectors).
        labels: ``N`` integer class labels (used only for evaluation).
        name: human-readable name of the split, used in messages.
        available: ``N×V`` bool, True where sample ``i`` has view ``v`` (``None``: every
            view present). Every sample needs at least one view. An absent view's tensor
            content is ignored: it may hold anything (NaN included) and is replaced by
            zeros, so that downstream code sees one canonical "absent" input.
    """

    views: list[Tensor]
    labels: Tensor
    name: str = "data"
    available: Tensor | None = None

    def __post_init__(self) -> None:
        if len(self.views) == 0:
            raise DataError(f"{self.name}: a multi-view dataset needs at least one view, got 0.")
        n = self.labels.shape[0] if self.labels.ndim == 1 else -1
        if n < 0:
            raise DataError(
                f"{self.name}: labels must be a 1-D tensor of class ids, got shape "
                f"{tuple(self.labels.shape)}."
            )
        if self.labels.dtype.is_floating_point or self.labels.dtype == torch.bool:
            raise DataError(f"{self.name}: labels must be integers, got {self.labels.dtype}.")
        self.labels = self.labels.long()
        self.views = list(self.views)  # absent rows are zeroed below: never in the caller's list
        self.available = self._check_available(n)
        for v, x in enumerate(self.views):
            if x.shape[0] != n:
                counts = [int(t.shape[0]) for t in self.views]
                raise DataError(
                    f"{self.name}: every view and the labels must have the same number of "
                    f"samples; got views {counts} and {n} labels. Check that view {v} is "
                    "aligned with the others."
                )
            if x.ndim not in (2, 4):
                raise DataError(
                    f"{self.name}: view {v} has shape {tuple(x.shape)}; expected N×D feature "
                    "vectors or N×C×H×W images."
                )
            if not x.dtype.is_floating_point:
                raise DataError(f"{self.name}: view {v} must be floating point, got {x.dtype}.")
            present = self.available[:, v]
            if not present.all():
                x = self.views[v] = zero_absent(x, present)
            if not torch.isfinite(x).all():
                bad = int((~torch.isfinite(x)).flatten(1).any(1).sum())
                raise DataError(
                    f"{self.name}: view {v} contains NaN or inf values in {bad} samples; "
                    "clean or impute them before training."
                )
        if n == 0:
            raise DataError(f"{self.name}: the split is empty (0 samples).")

    def _check_available(self, n: int) -> Tensor:
        """The validated availability mask (all True when none was given)."""
        v = len(self.views)
        device = self.labels.device
        if self.available is None:
            return torch.ones(n, v, dtype=torch.bool, device=device)
        a = self.available
        if tuple(a.shape) != (n, v):
            raise DataError(
                f"{self.name}: the view-availability mask must be N×V = {n}×{v} "
                f"(one row per sample, one column per view), got {tuple(a.shape)}."
            )
        if a.dtype != torch.bool:
            if a.dtype.is_floating_point or not ((a == 0) | (a == 1)).all():
                raise DataError(f"{self.name}: the view-availability mask must hold 0/1 values.")
            a = a.bool()
        empty = int((~a.any(dim=1)).sum())
        if empty:
            raise DataError(
                f"{self.name}: {empty} samples have no view at all (an all-zero row in the "
                "availability mask); every sample needs at least one view. Drop those samples."
            )
        return a.to(device)

    @property
    def complete(self) -> bool:
        """True when every sample has every view."""
        return bool(self.available.all())

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_views(self) -> int:
        return len(self.views)

    @property
    def view_shapes(self) -> list[tuple[int, ...]]:
        """Per-sample shape of each view (without the sample dimension)."""
        return [tuple(x.shape[1:]) for x in self.views]

    def subset(self, index: Tensor, name: str | None = None) -> MultiViewData:
        """Rows ``index`` of every view, as a new dataset."""
        return MultiViewData(
            [x[index] for x in self.views],
            self.labels[index],
            name or self.name,
            self.available[index.to(self.available.device)],
        )

    def to(self, device: torch.device | str) -> MultiViewData:
        return MultiViewData(
            [x.to(device) for x in self.views],
            self.labels.to(device),
            self.name,
            self.available.to(device),
        )

    def with_available(self, available: Tensor, name: str | None = None) -> MultiViewData:
        """The same samples with another availability mask (absent views become zeros)."""
        return MultiViewData(self.views, self.labels, name or self.name, available)


def zero_absent(x: Tensor, present: Tensor) -> Tensor:
    """``x`` with the rows of absent samples (``present`` False) set to 0, NaN included."""
    keep = present.view(-1, *([1] * (x.ndim - 1))).to(x.device)
    return torch.where(keep, x, torch.zeros((), dtype=x.dtype, device=x.device))


@dataclass
class DatasetSplits:
    """A train, an optional validation and a test split of one multi-view dataset, with
    its metadata. ``val`` is carved from the training data (:func:`carve_validation`):
    whatever chooses a setting looks at it, never at ``test``."""

    train: MultiViewData
    test: MultiViewData
    num_classes: int
    name: str
    class_names: list[str] = field(default_factory=list)
    val: MultiViewData | None = None
    #: The view whose specific code is concatenated with ``C`` to form ``C‖S_best``;
    #: ``None``: not chosen yet (:func:`mrdd.eval.best_view.settle_best_view` chooses it).
    best_view: int | None = None
    #: The settings that drew the split (seed, test fraction, missing-view rate and seed),
    #: as :func:`mrdd.data.load_dataset` passed them; part of :attr:`identity`.
    split_settings: dict[str, Any] = field(default_factory=dict)
    #: What the loader did to each view before training (:mod:`mrdd.data.preprocess`),
    #: saved with the model so raw inputs can be prepared alike; ``None``: not recorded
    #: (a loader that builds its splits without :func:`mrdd.data.common.make_splits`).
    preprocessing: Preprocessing | None = None

    def __post_init__(self) -> None:
        if self.best_view is not None and not 0 <= self.best_view < self.train.num_views:
            raise DataError(
                f"{self.name}: best_view={self.best_view} but the dataset has "
                f"{self.train.num_views} views (0..{self.train.num_views - 1})."
            )
        for other in (self.test, self.val):
            if other is not None and other.view_shapes != self.train.view_shapes:
                raise DataError(
                    f"{self.name}: the splits' views differ in shape: "
                    f"{self.train.view_shapes} (train) vs {other.view_shapes} ({other.name})."
                )

    @property
    def view_shapes(self) -> list[tuple[int, ...]]:
        return self.train.view_shapes

    @cached_property
    def identity(self) -> dict[str, Any]:
        """What checkpoints record of their training data (:func:`mrdd.data.identity.
        split_identity`): split settings, per split its size and content hash.
        Computed once; splits are not modified after loading (moving them to another
        device keeps their content)."""
        return split_identity(self.split_settings, {name: self.split(name) for name in self.names})

    @property
    def names(self) -> list[str]:
        """The splits this dataset has, in order: ``train``, ``val`` (if carved), ``test``."""
        return ["train", "test"] if self.val is None else ["train", "val", "test"]

    def split(self, name: str) -> MultiViewData:
        """The split called ``name`` (one of :attr:`names`)."""
        if name not in self.names:
            raise DataError(
                f"{self.name} has no {name!r} split; it has {self.names}"
                + (
                    " (set dataset.val_fraction > 0 for a validation split)."
                    if name == "val"
                    else "."
                )
            )
        return getattr(self, name)


def stratified_split(labels: Tensor, test_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Seeded stratified split: indices of train and test samples (each sorted), drawn by
    :func:`stratified_holdout` (its rounding rule sets each class's share of test)."""
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test_fraction must be in (0, 1), got {test_fraction}.")
    return stratified_holdout(labels, test_fraction, seed)


def carve_validation(splits: DatasetSplits, fraction: float, seed: int) -> DatasetSplits:
    """``splits`` with a stratified, seeded ``fraction`` of the training samples moved into
    ``val`` (none when ``fraction`` is 0): the split that defaults, sweeps, early stopping
    and the training-time probe look at, so that ``test`` is only ever reported."""
    if fraction == 0:
        return splits
    if not 0.0 < fraction < 1.0:
        raise DataError(f"dataset.val_fraction must be in [0, 1), got {fraction}.")
    keep, val = stratified_holdout(splits.train.labels.cpu(), fraction, seed)
    if len(val) == 0 or len(keep) == 0:
        raise DataError(
            f"{splits.name}: dataset.val_fraction={fraction} of {len(splits.train)} training "
            f"samples leaves {len(keep)} for training and {len(val)} for validation; raise it, "
            "or set dataset.val_fraction=0 (then nothing can be chosen on validation data)."
        )
    train = splits.train
    return dataclasses.replace(
        splits,
        train=train.subset(keep, f"{splits.name}/train"),
        val=train.subset(val, f"{splits.name}/val"),
    )


def stratified_holdout(labels: Tensor, fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Seeded stratified hold-out of ``max(1, round(fraction · N))`` samples: indices of the
    kept and the held-out samples (each sorted). The one stratified sampler of mrdd: the
    test split (:func:`stratified_split`), the validation split (:func:`carve_validation`)
    and the classification probes' training subsamples (:mod:`mrdd.eval.metrics`).

    The rounding rule (largest remainders): each class gives ``floor(fraction · count)``
    samples, and the rest of the total goes to the classes with the largest remainders
    (ties to the smaller class id; never a class's last sample), so that the total is the
    one requested and a small dataset, whose classes are too small to give one sample
    each, still gets a held-out part of that size. Each class's samples are then drawn
    by a seeded permutation, class by class.
    """
    classes, counts = torch.unique(labels, return_counts=True)
    quota = fraction * counts.double()
    taken = quota.floor().long().clamp(max=counts - 1)
    total = min(max(1, round(fraction * len(labels))), int((counts - 1).sum()))
    by_remainder = torch.argsort(quota - taken.double(), descending=True, stable=True)
    for c in by_remainder.tolist() * 2:  # a second pass if the first left some short
        if int(taken.sum()) >= total:
            break
        if taken[c] < counts[c] - 1:
            taken[c] += 1
    g = torch.Generator().manual_seed(seed)
    keep, held = [], []
    for cls, k in zip(classes.tolist(), taken.tolist(), strict=True):
        idx = torch.nonzero(labels == cls).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        held.append(idx[:k])
        keep.append(idx[k:])
    return torch.cat(keep).sort().values, torch.cat(held).sort().values
