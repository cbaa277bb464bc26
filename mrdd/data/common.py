"""Helpers shared by the dataset loaders: image decoding and resizing, splitting,
per-view standardisation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from mrdd.data.base import DataError, DatasetSplits, MultiViewData, stratified_split
from mrdd.data.checks import check_samples
from mrdd.data.preprocess import (
    Preprocessing,
    float32_values,
    recorded_for,
    standardized,
)

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


def check_split_options(seed: int, test_fraction: float) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise DataError(f"seed must be an integer, got {seed!r}.")
    if not 0.0 < float(test_fraction) < 1.0:
        raise DataError(f"test_fraction must be in (0, 1), got {test_fraction}.")


def standardize(views: list[Tensor], train_idx: Tensor) -> list[Tensor]:
    """Per-view standardisation of vector (``N×D``) views with train-split statistics
    (:func:`vector_statistics`). Image views are returned unchanged."""
    out = []
    for x in views:
        out.append(standardized(x, *vector_statistics(x[train_idx])) if x.ndim == 2 else x)
    return out


def vector_statistics(train: Tensor) -> tuple[Tensor, Tensor]:
    """Per-feature float64 mean and standard deviation of a vector view's training rows:
    every feature gets zero mean and unit variance; a constant feature (zero variance)
    gets std 1, so it is only centred."""
    train = train.double()
    mean = train.mean(0)
    std = train.std(0, unbiased=False)
    return mean, torch.where(std > 1e-12 * (1.0 + mean.abs()), std, torch.ones_like(std))


@dataclass
class LoadedData:
    """What a loader read, before it is split: the views, their labels and what names them.

    ``available``: the ``N×V`` view-availability mask, if views are missing. ``where``: the
    source (file or folder) as error messages name it (default ``name``).
    ``preprocessing``: what the loader did to the views (default: nothing beyond scaling
    images to [0, 1], :func:`mrdd.data.preprocess.recorded_for`)."""

    views: list[Tensor]
    labels: Tensor
    name: str
    class_names: list[str]
    available: Tensor | None = None
    where: str | None = None
    preprocessing: Preprocessing | None = None


def make_splits(
    data: LoadedData,
    *,
    seed: int,
    test_fraction: float,
    fixed_split: tuple[Tensor, Tensor] | None = None,
    standardize_vectors: bool = False,
) -> DatasetSplits:
    """Check the data (:func:`mrdd.data.checks.check_samples`), split it (seeded and
    stratified, unless ``fixed_split`` gives the train and test indices) and wrap it as
    DatasetSplits; with ``standardize_vectors``, vector views are standardised with the
    training split's statistics, which are added to the recorded preprocessing."""
    views, labels, name, class_names = data.views, data.labels, data.name, data.class_names
    where, available, preprocessing = data.where, data.available, data.preprocessing
    train_idx, test_idx = fixed_split if fixed_split is not None else (None, None)
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
    preprocessing = preprocessing or recorded_for(views)
    if standardize_vectors:
        views = list(views)
        for v, x in enumerate(views):
            if x.ndim == 2:
                mean, std = vector_statistics(x[train_idx])
                views[v] = standardized(x, mean, std)
                preprocessing = preprocessing.with_statistics(v, mean, std)
    full = MultiViewData(views, labels, name, available)
    return DatasetSplits(
        train=full.subset(train_idx, f"{name}/train"),
        test=full.subset(test_idx, f"{name}/test"),
        num_classes=len(class_names),
        name=name,
        class_names=list(class_names),
        preprocessing=preprocessing,
    )


def float32_tensor(array: np.ndarray, what: str) -> Tensor:
    """``array`` (numeric, ``N×…``) as a float32 tensor, the type every view trains in
    (checked by :func:`float32_values`). ``what`` names the array in messages
    ("data.npz: view_0")."""
    if not array.dtype.isnative:  # torch reads native byte order only
        array = array.astype(array.dtype.newbyteorder("="))
    return float32_values(torch.from_numpy(np.ascontiguousarray(array)), what)


def describe_missing(items: Sequence[str], limit: int = 5) -> str:
    """``"a, b, c, ... (12 in all)"`` for error messages."""
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def prepare_splits(splits: DatasetSplits, preprocessing: Preprocessing) -> DatasetSplits:
    """``splits`` loaded *without* standardisation, with the vector views standardised
    by ``preprocessing``'s statistics (a model's, not these data's own): how data other
    than the training data must be prepared for that model. On the training data
    themselves this gives the training tensors bit for bit."""

    def prepared(data: MultiViewData) -> MultiViewData:
        views = [
            x if rule.mean is None else standardized(x, rule.mean, rule.std)
            for x, rule in zip(data.views, preprocessing.views, strict=True)
        ]
        return MultiViewData(views, data.labels, data.name, data.available)  # re-zeroes absent

    expected = [None if rule.mean is None else (rule.mean.numel(),) for rule in preprocessing.views]
    got = splits.view_shapes
    if len(got) != len(expected) or any(
        e not in (None, g) for e, g in zip(expected, got, strict=False)
    ):
        raise DataError(
            f"{splits.name} has views of shapes {got}; the model was trained on "
            f"{len(expected)} views whose vector views have the shapes "
            f"{[e for e in expected if e is not None]}. Prepare data with the same views."
        )
    parts = {name: prepared(splits.split(name)) for name in splits.names}
    return replace(splits, **parts, preprocessing=preprocessing)
