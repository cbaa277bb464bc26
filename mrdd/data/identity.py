"""Fingerprints of a dataset's splits: what a checkpoint records about its training data.

A stage-1 encoder is only valid for the data and split it was trained on: loaded for
another file, or another split seed or test fraction, its training samples may be
today's test samples, and every score would be silently optimistic. The dataset's
*name* cannot tell (it is ``npz`` or ``folder`` for all user data), so checkpoints
carry a content hash of each split's tensors instead, plus the split settings.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

if TYPE_CHECKING:
    from mrdd.data.base import DatasetSplits, MultiViewData


def _update(h: Any, t: Tensor) -> None:
    t = t.detach().contiguous().cpu()
    h.update(f"{t.dtype}{tuple(t.shape)};".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().data)


def fingerprint(data: MultiViewData) -> str:
    """A content hash (BLAKE2b, 32 hex digits) of a split: every view, the labels and the
    view-availability mask, with their types and shapes. Equal splits, however loaded,
    hash alike; one changed value, sample or sample order changes it."""
    h = hashlib.blake2b(digest_size=16)
    for t in [*data.views, data.labels, data.available]:
        _update(h, t)
    return h.hexdigest()


def split_identity(splits: DatasetSplits) -> dict[str, Any]:
    """``{"split", "train", ["val",] "test"}``: the split settings (seed, test fraction,
    missing-view rate, as the loader got them) and per split the number of samples and
    :func:`fingerprint`. Not the dataset's name or path: a renamed or moved copy of the
    data is the same data."""
    return {
        "split": dict(splits.split_settings),
        **{
            part: {"samples": len(data), "content": fingerprint(data)}
            for part, data in ((name, splits.split(name)) for name in splits.names)
        },
    }
