"""Full Edge-MNIST and Edge-FashionMNIST (docs/method.md, "Datasets").

View 1 is the image, view 2 its edge map (grey dilation with a 3×3 square minus the
image, on the 28×28 original), both resized to ``image_size`` and in [0, 1]; the
official 60,000/10,000 split. Edges are computed once, in bulk.

Files are read through torchvision from ``<root>/MNIST/raw/`` (or
``<root>/FashionMNIST/raw/``): ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (uncompressed). With
``download=True`` torchvision fetches them when a network is available.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mrdd.data.base import DataError, DatasetSplits
from mrdd.data.common import LoadedData, make_splits
from mrdd.data.edges import edge_views
from mrdd.data.registry import register_dataset

RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

_SOURCES = {
    "MNIST": "http://yann.lecun.com/exdb/mnist/ or torchvision's mirrors",
    "FashionMNIST": "https://github.com/zalandoresearch/fashion-mnist",
}


def _load_edge(kind: str, name: str, root: str, download: bool, image_size: int) -> DatasetSplits:
    import torchvision.datasets as tvd

    if not isinstance(image_size, int) or image_size <= 0:
        raise DataError(f"{name}: image_size must be a positive integer, got {image_size!r}.")
    raw = Path(root).expanduser() / kind / "raw"
    missing = [f for f in RAW_FILES if not (raw / f).is_file()]
    if missing and not download:
        gz = [f for f in missing if (raw / f"{f}.gz").is_file()]
        hint = (
            f" Compressed archives are present ({', '.join(f + '.gz' for f in gz)}): "
            "decompress them with gunzip."
            if gz
            else ""
        )
        raise DataError(
            f"{name}: the {kind} files are missing under {raw}: {', '.join(missing)}.{hint} "
            f"Pass dataset.download=true to let torchvision download them (needs a network), "
            f"or place the four uncompressed idx files ({', '.join(RAW_FILES)}) in {raw} "
            f"(source: {_SOURCES[kind]})."
        )
    cls = getattr(tvd, kind)
    parts = []
    try:
        for train in (True, False):
            parts.append(cls(str(Path(root).expanduser()), train=train, download=download))
    except Exception as err:  # torchvision raises RuntimeError / URLError / OSError
        raise DataError(
            f"{name}: torchvision could not load {kind} from {raw} (download={download}): "
            f"{err}. Place the files {', '.join(RAW_FILES)} in {raw}."
        ) from err
    images = torch.cat([p.data for p in parts]).unsqueeze(1).float().div_(255.0)
    labels = torch.cat([p.targets for p in parts]).long()
    n_train = len(parts[0].data)
    digit, edge = edge_views(images, image_size)
    del images
    class_names = [str(d) for d in range(10)] if kind == "MNIST" else list(parts[0].classes)
    official = (torch.arange(n_train), torch.arange(n_train, len(labels)))
    loaded = LoadedData([digit, edge], labels, name, class_names)
    return make_splits(loaded, seed=0, test_fraction=0.5, fixed_split=official)


@register_dataset("edge_mnist")
def load_edge_mnist(
    root: str = "data", download: bool = False, image_size: int = 32
) -> DatasetSplits:
    """Edge-MNIST: MNIST digit + edge map, official 60k/10k split."""
    return _load_edge("MNIST", "edge_mnist", root, download, image_size)


@register_dataset("edge_fmnist")
def load_edge_fmnist(
    root: str = "data", download: bool = False, image_size: int = 32
) -> DatasetSplits:
    """Edge-FashionMNIST: Fashion-MNIST image + edge map, official 60k/10k split."""
    return _load_edge("FashionMNIST", "edge_fmnist", root, download, image_size)
