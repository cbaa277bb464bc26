"""Full Edge-MNIST / Edge-FashionMNIST from idx files laid out as torchvision expects."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fixtures.data_formats import write_mnist
from scipy.ndimage import grey_dilation

from mrdd.data import DataError, edge_views, load_dataset


@pytest.mark.parametrize(
    ("name", "kind"), [("edge_mnist", "MNIST"), ("edge_fmnist", "FashionMNIST")]
)
def test_edge_mnist_from_idx_files(tmp_path, name, kind):
    tr_x, tr_y, te_x, te_y = write_mnist(tmp_path, kind, n_train=20, n_test=10)
    data = load_dataset({"val_fraction": 0, "name": name, "root": str(tmp_path), "best_view": 1})
    assert (len(data.train), len(data.test)) == (20, 10)
    assert data.num_classes == 10 and data.best_view == 1
    assert data.view_shapes == [(1, 32, 32), (1, 32, 32)]
    assert torch.equal(data.train.labels, torch.as_tensor(tr_y, dtype=torch.long))
    assert torch.equal(data.test.labels, torch.as_tensor(te_y, dtype=torch.long))
    # the views are exactly the Edge-MNIST protocol applied to the stored images, in order
    images = torch.as_tensor(np.concatenate([tr_x, te_x]), dtype=torch.float32)[:, None] / 255
    digit, edge = edge_views(images, 32)
    assert torch.equal(data.train.views[0], digit[:20]) and torch.equal(
        data.test.views[1], edge[20:]
    )
    for x in data.train.views + data.test.views:
        assert x.dtype == torch.float32 and x.min() >= 0 and x.max() <= 1


def test_edge_view_matches_scipy_at_native_size(tmp_path):
    tr_x, *_ = write_mnist(tmp_path, "MNIST", n_train=12, n_test=10)
    data = load_dataset(
        {"val_fraction": 0, "name": "edge_mnist", "root": str(tmp_path), "image_size": 28}
    )
    x = tr_x.astype(np.float64) / 255
    expected = np.stack([grey_dilation(img, size=(3, 3)) - img for img in x])
    assert torch.allclose(data.train.views[0][:, 0], torch.as_tensor(x, dtype=torch.float32))
    assert torch.allclose(data.train.views[1][:, 0].double(), torch.as_tensor(expected), atol=1e-6)
    assert data.train.views[1].sum() > 0


def test_fashion_class_names(tmp_path):
    write_mnist(tmp_path, "FashionMNIST", n_train=10, n_test=10)
    data = load_dataset({"val_fraction": 0, "name": "edge_fmnist", "root": str(tmp_path)})
    assert data.class_names[0] == "T-shirt/top" and len(data.class_names) == 10


@pytest.mark.parametrize(
    ("name", "kind"), [("edge_mnist", "MNIST"), ("edge_fmnist", "FashionMNIST")]
)
def test_missing_files_say_where_and_how(tmp_path, name, kind):
    with pytest.raises(DataError) as err:
        load_dataset({"val_fraction": 0, "name": name, "root": str(tmp_path)})
    msg = str(err.value)
    assert f"{kind}/raw" in msg and "train-images-idx3-ubyte" in msg
    assert "dataset.download=true" in msg
    # no silent substitute and nothing written
    assert not any(tmp_path.iterdir())


def test_gz_only_hint(tmp_path):
    write_mnist(tmp_path, "MNIST")
    raw = tmp_path / "MNIST" / "raw"
    f = raw / "t10k-labels-idx1-ubyte"
    f.rename(raw / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(DataError, match="gunzip"):
        load_dataset({"val_fraction": 0, "name": "edge_mnist", "root": str(tmp_path)})
