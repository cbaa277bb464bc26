"""Batches by index-gathering from in-memory view tensors.

There is no per-item ``__getitem__``: one permutation per epoch, and each batch is
``[view[idx] for view in views]``, with the labels and the view-availability
mask of those rows. When the data sit on the GPU, a batch never
crosses the PCIe bus. Under ``torch.distributed`` every rank draws the same
permutation (same seed and epoch) and takes its own contiguous shard of each
global batch, so K processes together see exactly the batches one process would.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import Tensor

from mrdd.data.base import DataError, MultiViewData


class Batch(NamedTuple):
    """One mini-batch: the rows ``index`` of every view, their labels, and their ``B×V``
    view-availability mask. ``index`` (row numbers in the split) lets a stage look up
    per-sample values it computed once, such as stage 2's frozen consistent codes."""

    views: list[Tensor]
    labels: Tensor
    available: Tensor
    index: Tensor

    @classmethod
    def of(cls, views: list[Tensor], available: Tensor | None = None) -> Batch:
        """A batch of ``views`` (every view present unless ``available`` says otherwise),
        with placeholder labels and row numbers ``0..B-1``: e.g. to step a stage by hand."""
        n, device = views[0].shape[0], views[0].device
        if available is None:
            available = torch.ones(n, len(views), dtype=torch.bool, device=device)
        index = torch.arange(n, device=device)
        return cls(list(views), torch.zeros(n, dtype=torch.long, device=device), available, index)

    def to(self, device: torch.device) -> Batch:
        """The batch on ``device``; copies from the host do not block it."""
        return Batch(
            [x.to(device, non_blocking=True) for x in self.views],
            self.labels.to(device, non_blocking=True),
            self.available.to(device, non_blocking=True),
            self.index.to(device, non_blocking=True),
        )


class BatchLoader:
    """Iterate over the :class:`Batch` es (``views, labels, available, index``) of a
    :class:`MultiViewData`.

    Args:
        data: the split to iterate over (on any device).
        batch_size: the *global* batch size (summed over all ranks).
        shuffle: draw a fresh permutation every epoch (seeded by ``seed`` + epoch).
        drop_last: drop the last incomplete global batch.
        seed: base seed of the permutations.
        shard: ``(rank, world_size)``, this process's shard of each global batch.
    """

    def __init__(
        self,
        data: MultiViewData,
        batch_size: int,
        *,
        shuffle: bool = True,
        drop_last: bool = True,
        seed: int = 0,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        rank, world_size = shard
        if batch_size <= 0:
            raise DataError(f"batch_size must be positive, got {batch_size}.")
        if drop_last and batch_size > len(data):
            raise DataError(
                f"batch_size {batch_size} is larger than the {len(data)} samples of "
                f"{data.name} and drop_last is on, so an epoch would have no batch. "
                "Lower the batch size."
            )
        if batch_size % world_size != 0:
            raise DataError(
                f"batch_size {batch_size} is not divisible by the {world_size} processes; "
                "the global batch must split evenly across ranks."
            )
        self.data = data
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of ``epoch`` (call before iterating)."""
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.data)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self) -> Tensor:
        n = len(self.data)
        if not self.shuffle:
            return torch.arange(n)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(n, generator=g)

    def __iter__(self) -> Iterator[Batch]:
        order = self._order().to(self.data.labels.device)
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            if self.world_size > 1:
                idx = idx.tensor_split(self.world_size)[self.rank]
            data = self.data
            yield Batch([x[idx] for x in data.views], data.labels[idx], data.available[idx], idx)
