"""Helpers shared by the dataset loaders: image decoding and resizing, splitting,
per-view standardisation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mrdd.data.base import DataError, DatasetSplits, MultiViewData, stratified_split

#: PIL modes that hold one grey channel (converted with ``convert("L")``).
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})


def read_image(path: str | Path, mode: str) -> Tensor:
    """Decode one image file with PIL as a ``C×H×W`` uint8 tensor (``mode`` "L" or "RGB")."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            array = np.asarray(img.convert(mode))
    except (OSError, ValueError) as err:
        raise DataError(f"Cannot decode image {path}: {err}") from err
    t = torch.from_numpy(array.copy())
    return t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1).contiguous()


def image_mode(path: str | Path) -> str:
    """The PIL mode of an image file, without decoding its pixels."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.mode
    except (OSError, ValueError) as err:
        raise DataError(f"Cannot open image {path}: {err}") from err


def resize_images(images: Sequence[Tensor] | Tensor, size: int, chunk: int = 256) -> Tensor:
    """Stack uint8 ``C×H×W`` images (or take a uint8/float ``N×C×H×W`` tensor) and resize
    them to ``size×size`` float32 in [0, 1] with bilinear, antialiased interpolation.

    Images of different sizes are allowed in a sequence; each chunk of equal-size images
    is resized in one call, so memory stays bounded for large datasets.
    """
    if size <= 0:
        raise DataError(f"image_size must be positive, got {size}.")
    n = len(images)
    if n == 0:
        raise DataError("No images to resize.")
    channels = int(images[0].shape[0]) if not isinstance(images, Tensor) else images.shape[1]
    out = torch.empty(n, channels, size, size, dtype=torch.float32)
    start = 0
    while start < n:
        stop = start + 1
        shape = images[start].shape
        while stop < n and stop - start < chunk and images[stop].shape == shape:
            stop += 1
        batch = images[start:stop]
        batch = batch if isinstance(batch, Tensor) else torch.stack(list(batch))
        batch = batch.float() / 255.0 if batch.dtype == torch.uint8 else batch.float()
        if tuple(batch.shape[-2:]) != (size, size):
            batch = F.interpolate(
                batch, size=(size, size), mode="bilinear", align_corners=False, antialias=True
            )
        out[start:stop] = batch.clamp_(0.0, 1.0)
        start = stop
    return out


def check_split_options(seed: int, test_fraction: float) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise DataError(f"seed must be an integer, got {seed!r}.")
    if not 0.0 < float(test_fraction) < 1.0:
        raise DataError(f"test_fraction must be in (0, 1), got {test_fraction}.")


def standardize(views: list[Tensor], train_idx: Tensor) -> list[Tensor]:
    """Per-view standardisation of vector (``N×D``) views with train-split statistics.

    Every feature gets zero mean and unit variance over the training samples; constant
    features (zero variance) are only centred. Image views are returned unchanged.
    """
    out = []
    for x in views:
        if x.ndim != 2:
            out.append(x)
            continue
        train = x[train_idx].double()
        mean = train.mean(0)
        std = train.std(0, unbiased=False)
        std = torch.where(std > 1e-12 * (1.0 + mean.abs()), std, torch.ones_like(std))
        out.append(((x.double() - mean) / std).float())
    return out


def make_splits(
    views: list[Tensor],
    labels: Tensor,
    name: str,
    *,
    seed: int,
    test_fraction: float,
    class_names: list[str],
    train_idx: Tensor | None = None,
    test_idx: Tensor | None = None,
    standardize_vectors: bool = False,
    available: Tensor | None = None,
) -> DatasetSplits:
    """Split (seeded and stratified unless indices are given) and wrap as DatasetSplits.

    ``available``: the data's ``N×V`` view-availability mask, if views are missing."""
    labels = labels.long()
    if train_idx is None or test_idx is None:
        check_split_options(seed, test_fraction)
        train_idx, test_idx = stratified_split(labels, float(test_fraction), seed)
    if len(train_idx) == 0 or len(test_idx) == 0:
        raise DataError(
            f"{name}: the split leaves {len(train_idx)} training and {len(test_idx)} test "
            "samples; both must be non-empty (add samples or change test_fraction)."
        )
    if standardize_vectors:
        views = standardize(views, train_idx)
    full = MultiViewData(views, labels, name, available)
    return DatasetSplits(
        train=full.subset(train_idx, f"{name}/train"),
        test=full.subset(test_idx, f"{name}/test"),
        num_classes=len(class_names),
        name=name,
        class_names=list(class_names),
    )


def describe_missing(items: Sequence[str], limit: int = 5) -> str:
    """``"a, b, c, ... (12 in all)"`` for error messages."""
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")
