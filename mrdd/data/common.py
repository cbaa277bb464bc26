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
from mrdd.data.checks import check_samples

#: PIL modes that hold one grey channel (a view of only these is read as 1 channel).
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


#: PIL modes of high-bit-depth grey images, and the largest value of their bit depth.
#: PNG, the only format read here that has them, stores at most 16 bits per sample;
#: Pillow opens such images as ``I;16*`` (or, in older versions, as 32-bit ``I``).
HIGH_DEPTH_MAX = {"I;16": 65535, "I;16B": 65535, "I;16L": 65535, "I;16N": 65535, "I": 65535}


def read_image(path: str | Path, mode: str) -> Tensor:
    """Decode one image file with PIL as a ``C×H×W`` tensor (``mode`` "L" or "RGB").

    8-bit images come back as uint8 (0..255). 16-bit grey images come back as float32
    in [0, 1], divided by 65535: converting them to 8 bits would clip every value above
    255 to white."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            high_depth = HIGH_DEPTH_MAX.get(img.mode)
            array = np.asarray(img if high_depth else img.convert(mode))
    except (OSError, ValueError) as err:
        raise DataError(
            f"Cannot decode image {path}: {err}. Replace or remove the file (only images "
            "belong in the data folders)."
        ) from err
    if high_depth:
        return _high_depth_image(array, high_depth, mode, path)
    t = torch.from_numpy(array.copy())
    return t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1).contiguous()


def _high_depth_image(array: np.ndarray, top: int, mode: str, path: str | Path) -> Tensor:
    """A 16-bit grey ``H×W`` array as a float32 ``C×H×W`` tensor in [0, 1] (``C`` = 3 for
    an RGB view: the grey values are repeated)."""
    values = array.astype(np.float32)
    if values.min() < 0 or values.max() > top:
        raise DataError(
            f"{path}: a grey image with values in [{values.min():.0f}, {values.max():.0f}], "
            f"outside the 0..{top} of 16-bit images; save it as an 8- or 16-bit PNG."
        )
    t = torch.from_numpy(values / top).unsqueeze(0)
    return t.expand(3, *t.shape[1:]).contiguous() if mode == "RGB" else t


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

    Float images (16-bit ones, see :func:`read_image`) are taken as already in [0, 1].
    Images of different sizes are allowed in a sequence; each chunk of images of equal
    size and type is resized in one call, so memory stays bounded for large datasets.
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
        shape, dtype = images[start].shape, images[start].dtype
        while (
            stop < n
            and stop - start < chunk
            and (images[stop].shape, images[stop].dtype) == (shape, dtype)
        ):
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
    where: str | None = None,
) -> DatasetSplits:
    """Check the data (:func:`mrdd.data.checks.check_samples`), split it (seeded and
    stratified unless indices are given) and wrap it as DatasetSplits.

    ``available``: the data's ``N×V`` view-availability mask, if views are missing.
    ``where``: the data's source (file or folder) as error messages name it (default
    ``name``)."""
    where = where or name
    check_samples(views, labels, class_names, where)
    labels = labels.long()
    if train_idx is None or test_idx is None:
        check_split_options(seed, test_fraction)
        train_idx, test_idx = stratified_split(labels, float(test_fraction), seed)
    if len(train_idx) == 0 or len(test_idx) == 0:
        raise DataError(
            f"{where}: the split leaves {len(train_idx)} training and {len(test_idx)} test "
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


def float32_tensor(array: np.ndarray, what: str) -> Tensor:
    """``array`` (numeric, ``N×…``) as a float32 tensor, the type every view trains in.

    Refuses NaN/inf, and values that are finite in ``array`` but beyond the range of
    float32 (about ±3.4e38), which the conversion would turn into inf. ``what`` names
    the array in messages ("data.npz: view_0")."""
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).reshape(len(array), -1).any(1).sum())
        raise DataError(
            f"{what} contains NaN or inf values in {bad} samples; clean or impute them first."
        )
    with np.errstate(over="ignore"):  # overflow is reported below, with what to do
        x = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).reshape(len(x), -1).any(1).sum())
        top = float(np.abs(array).max())
        raise DataError(
            f"{what} holds values as large as {top:.3g} (in {bad} samples), beyond the "
            f"float32 range (±{float(np.finfo(np.float32).max):.3g}) that training uses; "
            "they would overflow to inf. Rescale the view before saving it (divide by a "
            "constant, or take a log)."
        )
    return x


def describe_missing(items: Sequence[str], limit: int = 5) -> str:
    """``"a, b, c, ... (12 in all)"`` for error messages."""
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")
