"""UCI "Multiple Features" (handwritten digits): 6 vector views of 2,000 digits.

Files (the UCI archive, https://archive.ics.uci.edu/dataset/72/multiple+features),
whitespace-separated text, one row per digit, 200 digits per class in class order
0..9, under ``root`` (or ``root/mfeat``):

========== ===== ==========================================
file       dims  descriptor
========== ===== ==========================================
mfeat-fou     76 Fourier coefficients of the character shape
mfeat-fac    216 profile correlations
mfeat-kar     64 Karhunen-Loève coefficients
mfeat-pix    240 pixel averages in 2×3 windows
mfeat-zer     47 Zernike moments
mfeat-mor      6 morphological features
========== ===== ==========================================

Views are in this order, standardised per feature with training-split statistics
(``standardize=True``), with a seeded stratified train/test split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mrdd.data.base import DataError, DatasetSplits
from mrdd.data.common import LoadedData, check_split_options, float32_tensor, make_splits
from mrdd.data.registry import register_dataset

MFEAT_VIEWS = (("fou", 76), ("fac", 216), ("kar", 64), ("pix", 240), ("zer", 47), ("mor", 6))
MFEAT_SAMPLES = 2000
MFEAT_URL = "https://archive.ics.uci.edu/dataset/72/multiple+features"


@register_dataset("multiple_features")
def load_multiple_features(
    root: str = "data/multiple_features",
    standardize: bool = True,
    seed: int = 0,
    test_fraction: float = 0.2,
) -> DatasetSplits:
    """UCI Multiple Features: 2,000 digits, 6 views of 76/216/64/240/47/6 features."""
    check_split_options(seed, test_fraction)
    base = Path(str(root)).expanduser()
    names = [f"mfeat-{v}" for v, _ in MFEAT_VIEWS]
    folder = next(
        (c for c in (base, base / "mfeat") if all((c / n).is_file() for n in names)), None
    )
    if folder is None:
        missing = [n for n in names if not (base / n).is_file()]
        raise DataError(
            f"multiple_features: missing {', '.join(missing)} under {base}. Expected the six "
            f"UCI files {', '.join(names)} in that folder (or in {base / 'mfeat'}); get them "
            f"from {MFEAT_URL}."
        )
    views = []
    for (v, dims), n in zip(MFEAT_VIEWS, names, strict=True):
        try:
            x = np.loadtxt(folder / n, dtype=np.float64, ndmin=2)
        except ValueError as err:
            raise DataError(f"multiple_features: cannot parse {folder / n}: {err}") from err
        if x.shape != (MFEAT_SAMPLES, dims):
            raise DataError(
                f"multiple_features: {folder / n} has shape {x.shape}; the {v} view has "
                f"{MFEAT_SAMPLES} rows of {dims} values."
            )
        views.append(float32_tensor(x, f"multiple_features: {folder / n}"))
    labels = torch.arange(MFEAT_SAMPLES) // (MFEAT_SAMPLES // 10)
    loaded = LoadedData(
        views,
        labels,
        "multiple_features",
        [str(d) for d in range(10)],
        where=f"multiple_features ({folder})",
    )
    return make_splits(
        loaded, seed=seed, test_fraction=test_fraction, standardize_vectors=bool(standardize)
    )
