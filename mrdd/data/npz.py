"""Your own multi-view data as one ``.npz`` file (``dataset=npz dataset.path=...``).

Format (write it with ``numpy.savez(path, view_0=..., view_1=..., labels=...)``):

* ``view_0``, ``view_1``, …, ``view_{V-1}`` (numbered from 0 without gaps, V ≥ 1): one
  array per view, all with the same number of samples N in the first dimension. Each is
  ``N×D`` feature vectors, ``N×C×H×W`` images, or ``N×H×W`` grey images (a channel
  dimension is added). Channels-last ``N×H×W×C`` images (last axis 1, 3 or 4, second
  axis not) are transposed to ``N×C×H×W``, with a logged line. uint8 images are scaled
  by 1/255; other images must already lie in [0, 1]. Views may differ in shape and type.
* ``labels``: N class labels (integers or strings). They are used only for evaluation and
  are renumbered 0..K-1 in sorted order; ``class_names`` keeps the original values.
* ``split`` (optional): N values, 0 or ``"train"`` for training samples, 1 or ``"test"``
  for test samples. Without it, a stratified split seeded with ``seed`` holds out
  ``test_fraction`` of the samples, spread over the classes
  (:func:`mrdd.data.base.stratified_holdout`).
* ``class_names`` (optional): K names for the renumbered classes.
* ``available`` (optional): N×V array of 0/1 (or bool), 1 where sample i has view v, for
  incomplete data. Every sample needs at least one view; an absent view's entries are
  ignored (store any finite value there, e.g. 0).

The data must have at least one sample, at least two classes in each split with every
test class present in training, and views that are neither empty (``N×0``) nor the same
in every sample (:mod:`mrdd.data.checks`); float64 values must fit in float32.

With ``standardize=True`` every vector view is standardised per feature (zero mean, unit
variance with training-split statistics only); image views are left as they are. What
was done is recorded (:mod:`mrdd.data.preprocess`) and saved with the model, which
applies it to raw inputs (docs/preprocessing.md).

A file that is not an .npz archive (a renamed .npy, a text file) or whose archive is
damaged (a flipped bit, a cut-off copy) is refused in one line naming it.
"""

from __future__ import annotations

import re
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mrdd.data.base import DataError, DatasetSplits
from mrdd.data.common import LoadedData, check_split_options, float32_tensor, make_splits
from mrdd.data.preprocess import channels_first, image_values, recorded_for
from mrdd.data.registry import register_dataset

_VIEW = re.compile(r"^view_(\d+)$")
_KNOWN = {"labels", "split", "class_names", "available"}


def _view_tensor(array: np.ndarray, key: str, where: str) -> tuple[Tensor, bool]:
    """One view as the float32 tensor training uses, and whether it was stored
    channels-last (:mod:`mrdd.data.preprocess` holds the rules the API applies too)."""
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise DataError(f"{where}: {key} has dtype {array.dtype}; views must be numeric arrays.")
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim not in (2, 4):
        raise DataError(
            f"{where}: {key} has shape {array.shape}; expected N×D vectors, N×H×W or N×C×H×W "
            "images (a single feature per sample must be stored as N×1)."
        )
    if array.ndim == 2:
        return float32_tensor(array, f"{where}: {key}"), False
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    images, was_channels_last = channels_first(torch.from_numpy(array), f"{where}: {key}")
    return image_values(images, f"{where}: {key}"), was_channels_last


def _labels(array: np.ndarray, where: str) -> tuple[Tensor, list[str]]:
    if array.ndim != 1:
        raise DataError(
            f"{where}: labels must be a 1-D array of N labels, got shape {array.shape}."
        )
    if array.dtype == object:
        raise DataError(f"{where}: labels has dtype object; store integers or fixed-width strings.")
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            raise DataError(
                f"{where}: labels must be integers (or strings), got floats that are NaN, "
                "inf or not whole numbers; store one class id or name per sample."
            )
        array = array.astype(np.int64)
    if array.dtype.kind not in "biuUS":
        raise DataError(f"{where}: labels have unsupported dtype {array.dtype}.")
    values, inverse = np.unique(array, return_inverse=True)
    names = [v.decode() if isinstance(v, bytes) else str(v) for v in values.tolist()]
    return torch.from_numpy(inverse.reshape(-1).astype(np.int64)), names


def _split(array: np.ndarray, n: int, where: str) -> tuple[Tensor, Tensor]:
    if array.shape != (n,):
        raise DataError(f"{where}: split must have shape ({n},), got {array.shape}.")
    if array.dtype.kind in "US":
        values = np.char.lower(np.char.strip(array.astype(str)))
        is_test = values == "test"
        ok = is_test | (values == "train")
    elif array.dtype.kind in "biuf":
        is_test = array == 1
        ok = is_test | (array == 0)
    else:
        raise DataError(
            f"{where}: split has dtype {array.dtype}; use 0/1 integers or 'train'/'test' strings."
        )
    if not ok.all():
        bad = sorted({str(v) for v in array[~ok].tolist()})[:5]
        raise DataError(
            f"{where}: split holds values other than 0/'train' and 1/'test': {bad} "
            f"({int((~ok).sum())} samples)."
        )
    t = torch.from_numpy(is_test)
    return torch.nonzero(~t).flatten(), torch.nonzero(t).flatten()


def _read_arrays(file: Path) -> dict[str, np.ndarray | None]:
    """The archive's arrays by role: ``labels``, ``views`` (a list), and the optional
    ``split``, ``class_names`` and ``available`` (``None`` when absent)."""
    where = str(file)
    _check_is_zip(file)
    try:
        archive = np.load(file, allow_pickle=False)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise DataError(f"{where}: {_DAMAGED} ({type(err).__name__}: {err}).") from err
    with archive:
        keys = list(archive.files)
        if "labels" not in keys:
            raise DataError(f"{where}: no 'labels' array (keys found: {keys}).")
        numbers = sorted(int(m.group(1)) for k in keys if (m := _VIEW.match(k)))
        if not numbers:
            raise DataError(
                f"{where}: no view arrays; name them view_0, view_1, ... (keys found: {keys})."
            )
        if numbers != list(range(len(numbers))):
            raise DataError(
                f"{where}: views must be numbered view_0 … view_{{V-1}} without gaps or "
                f"duplicates; found {[f'view_{i}' for i in numbers]}."
            )
        other = sorted(set(keys) - _KNOWN - {f"view_{i}" for i in numbers})
        if other:
            warnings.warn(f"{where}: ignoring arrays {other}.", stacklevel=3)
        arrays = {k: _member(archive, k, where) if k in keys else None for k in _KNOWN}
        arrays["views"] = [_member(archive, f"view_{i}", where) for i in numbers]
    return arrays


#: What every damaged-archive message says to do.
_DAMAGED = (
    "the .npz archive is damaged or truncated; write it again with numpy.savez (or copy it again)"
)


def _check_is_zip(file: Path) -> None:
    """Refuse a file that is not a zip archive (what numpy.savez writes) by what it is:
    a lone .npy array renamed, or another file (text, pickle), before numpy guesses."""
    with file.open("rb") as f:
        head = f.read(6)
    if head.startswith(b"PK"):
        return
    what = (
        "a single .npy array (numpy.save), not an .npz archive"
        if head == b"\x93NUMPY"
        else (f"not an .npz archive (it starts with {head!r}; an .npz file is a zip archive)")
    )
    raise DataError(
        f"{file}: the file is {what}. Save the data with numpy.savez(path, view_0=..., "
        "view_1=..., labels=...)."
    )


def _member(archive: Any, key: str, where: str) -> np.ndarray:
    """One array of the archive, read now (zip damage shows only when it is read)."""
    try:
        return archive[key]
    except ValueError as err:  # object arrays need pickle
        if "pickle" not in str(err):
            raise DataError(f"{where}: {key} cannot be read ({err}); {_DAMAGED}.") from err
        raise DataError(
            f"{where}: {key} holds Python objects (dtype object), which load only by "
            "unpickling; store numeric arrays and fixed-width strings only."
        ) from err
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as err:
        raise DataError(
            f"{where}: {key} cannot be read ({type(err).__name__}: {err}); {_DAMAGED}."
        ) from err


def _class_names(raw: np.ndarray | None, names: list[str], where: str) -> list[str]:
    if raw is None:
        return names
    if raw.shape != (len(names),):
        raise DataError(
            f"{where}: class_names has shape {raw.shape}, but labels hold {len(names)} classes."
        )
    return [str(x) for x in raw.tolist()]


def _available(raw: np.ndarray | None, where: str) -> torch.Tensor | None:
    if raw is None:
        return None
    if raw.dtype.kind not in "biu":
        raise DataError(f"{where}: available has dtype {raw.dtype}; store 0/1 integers or bools.")
    return torch.from_numpy(raw.astype(np.int64))


@register_dataset("npz")
def load_npz(
    path: str, standardize: bool = True, seed: int = 0, test_fraction: float = 0.2
) -> DatasetSplits:
    """A multi-view dataset stored as ``view_0..view_{V-1}``, ``labels``, optional ``split``."""
    file = Path(str(path)).expanduser()
    where = str(file)
    if not file.is_file():
        raise DataError(
            f"npz dataset: file {file} not found. Pass dataset.path=/path/to/data.npz; the file "
            "holds view_0 … view_{V-1}, labels and optionally split (see mrdd/data/npz.py)."
        )
    arrays = _read_arrays(file)
    labels, names = _labels(arrays["labels"], where)
    n = len(labels)
    counts = [a.shape[0] if a.ndim else 0 for a in arrays["views"]]
    if any(c != n for c in counts):
        raise DataError(
            f"{where}: every view needs the same number of samples as labels ({n}); got "
            + ", ".join(f"view_{i}: {c}" for i, c in enumerate(counts))
            + "."
        )
    views, channels_last = zip(
        *(_view_tensor(a, f"view_{i}", where) for i, a in enumerate(arrays["views"])),
        strict=True,
    )
    train_idx = test_idx = None
    if arrays["split"] is not None:
        train_idx, test_idx = _split(arrays["split"], n, where)
    else:
        check_split_options(seed, test_fraction)
    loaded = LoadedData(
        list(views),
        labels,
        file.stem,
        _class_names(arrays["class_names"], names, where),
        available=_available(arrays["available"], where),
        where=where,
        preprocessing=recorded_for(views, channels_last=channels_last),
    )
    return make_splits(
        loaded,
        seed=seed,
        test_fraction=test_fraction,
        fixed_split=None if train_idx is None or test_idx is None else (train_idx, test_idx),
        standardize_vectors=bool(standardize),
    )
