"""Multi-view datasets held as tensors, and a registry of loaders by name.

Importing this package registers every built-in loader: ``edge_mnist_5k`` (embedded),
``edge_mnist``, ``edge_fmnist``, ``coil20``, ``coil100``, ``office31``,
``multiple_features``, and the formats for your own data, ``npz`` and ``folder``.
"""

# Importing the loader modules registers them.
from mrdd.data import coil, edge_mnist, features, folder, mnist, npz, office  # noqa: F401
from mrdd.data.base import DataError, DatasetSplits, MultiViewData, stratified_split
from mrdd.data.coil import pose_dealing
from mrdd.data.common import standardize
from mrdd.data.edges import edge_map, edge_views
from mrdd.data.loader import Batch, BatchLoader
from mrdd.data.registry import available_datasets, load_dataset, register_dataset

__all__ = [
    "Batch",
    "BatchLoader",
    "DataError",
    "DatasetSplits",
    "MultiViewData",
    "available_datasets",
    "edge_map",
    "edge_views",
    "load_dataset",
    "pose_dealing",
    "register_dataset",
    "standardize",
    "stratified_split",
]
