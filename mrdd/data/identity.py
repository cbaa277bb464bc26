"""Fingerprints of a dataset's splits: what a checkpoint records about its training data.

A stage-1 encoder is only valid for the data and split it was trained on: loaded for
another file, or another split seed or test fraction, its training samples may be
today's test samples, and every score would be silently optimistic. The dataset's
*name* cannot tell (it is ``npz`` or ``folder`` for all user data), so checkpoints
carry a content hash of each split's tensors instead, plus the split settings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Protocol

import torch
from torch import Tensor


class SplitTensors(Protocol):
    """What a fingerprint reads of a split (a :class:`mrdd.data.base.MultiViewData`),
    named here so that this module does not import the one that calls it."""

    views: list[Tensor]
    labels: Tensor
    available: Tensor


def _update(h: Any, t: Tensor) -> None:
    t = t.detach().contiguous().cpu()
    h.update(f"{t.dtype}{tuple(t.shape)};".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().data)


def fingerprint(data: SplitTensors) -> str:
    """A content hash (BLAKE2b, 32 hex digits) of a split: every view, the labels and the
    view-availability mask, with their types and shapes. Equal splits, however loaded,
    hash alike; one changed value, sample or sample order changes it."""
    h = hashlib.blake2b(digest_size=16)
    for t in [*data.views, data.labels, data.available]:
        _update(h, t)
    return h.hexdigest()


def split_identity(
    settings: Mapping[str, Any], splits: Mapping[str, SplitTensors]
) -> dict[str, Any]:
    """``{"split", "train", ["val",] "test"}``: the split ``settings`` (seed, test fraction,
    missing-view rate, as the loader got them) and per split of ``splits`` (by name, in
    order) the number of samples and :func:`fingerprint`. Not the dataset's name or path:
    a renamed or moved copy of the data is the same data."""
    return {
        "split": dict(settings),
        **{
            name: {"samples": int(data.labels.shape[0]), "content": fingerprint(data)}
            for name, data in splits.items()
        },
    }
