"""In-memory multi-view datasets.

A multi-view dataset is a list of view tensors that share their first (sample)
dimension, plus one integer label per sample. Everything lives in memory as
tensors: loaders do all decoding, edge extraction and resizing once, so a
training step only gathers rows by index (no per-item Python work).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch
from torch import Tensor

from mrdd.data.identity import split_identity


class DataError(ValueError):
    """Raised when a dataset is missing, malformed, or inconsistent."""


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
    """A train and a test split of one multi-view dataset, with its metadata."""

    train: MultiViewData
    test: MultiViewData
    num_classes: int
    name: str
    class_names: list[str] = field(default_factory=list)
    #: The view whose specific code is concatenated with ``C`` to form ``C‖S_best``.
    best_view: int = 0
    #: The settings that drew the split (seed, test fraction, missing-view rate and seed),
    #: as :func:`mrdd.data.load_dataset` passed them; part of :attr:`identity`.
    split_settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 <= self.best_view < self.train.num_views:
            raise DataError(
                f"{self.name}: best_view={self.best_view} but the dataset has "
                f"{self.train.num_views} views (0..{self.train.num_views - 1})."
            )
        if self.train.view_shapes != self.test.view_shapes:
            raise DataError(
                f"{self.name}: train and test views differ in shape: "
                f"{self.train.view_shapes} vs {self.test.view_shapes}."
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
        return split_identity(self)

    def split(self, name: str) -> MultiViewData:
        """The split called ``name`` (``"train"`` or ``"test"``)."""
        if name not in ("train", "test"):
            raise DataError(f"Unknown split {name!r}; use 'train' or 'test'.")
        return self.train if name == "train" else self.test


def stratified_split(labels: Tensor, test_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Seeded stratified split: indices of train and test samples (each sorted).

    From every class, ``round(test_fraction * class_count)`` samples go to test.
    """
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test_fraction must be in (0, 1), got {test_fraction}.")
    g = torch.Generator().manual_seed(seed)
    train, test = [], []
    for cls in torch.unique(labels):
        idx = torch.nonzero(labels == cls).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        k = round(test_fraction * len(idx))
        test.append(idx[:k])
        train.append(idx[k:])
    return torch.cat(train).sort().values, torch.cat(test).sort().values
