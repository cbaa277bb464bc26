"""Your own data: the .npz format, the folder-of-images format, UCI Multiple Features,
the registry and the dataset configs."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures.data_formats import MFEAT_DIMS, mfeat_arrays, write_folder, write_mfeat
from PIL import Image

from mrdd.data import DataError, available_datasets, load_dataset
from mrdd.data.registry import _REGISTRY

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "dataset"


def write_npz(path, n=100, **extra):
    views, labels = mfeat_arrays(n)
    arrays = {f"view_{v}": x for v, x in enumerate(views)}
    arrays.update(labels=labels, **extra)
    np.savez(path, **arrays)
    return views, labels


def npz(path, **kw):
    return load_dataset({"val_fraction": 0, "name": "npz", "path": str(path), **kw})


def test_npz_six_vector_views(tmp_path):
    write_npz(tmp_path / "six.npz", n=100)
    data = npz(tmp_path / "six.npz")
    assert data.view_shapes == [(d,) for d in MFEAT_DIMS.values()]
    assert (len(data.train), len(data.test)) == (80, 20) and data.num_classes == 10
    for x in data.train.views:  # standardised with training statistics
        assert x.dtype == torch.float32
        assert torch.allclose(x.mean(0), torch.zeros(x.shape[1]), atol=1e-4)
        assert torch.allclose(x.std(0, unbiased=False), torch.ones(x.shape[1]), atol=1e-4)
    for x in data.test.views:  # test statistics are not used
        assert x.mean(0).abs().max() > 1e-3
    raw = npz(tmp_path / "six.npz", standardize=False)
    for split in (raw.train, raw.test):  # feature 0 of every view is the sample index
        ids = torch.stack([x[:, 0] for x in split.views], 1).long()
        assert (ids == ids[:, :1]).all()
        assert torch.equal(split.labels, ids[:, 0] // 10)


def test_npz_seeding_and_given_split(tmp_path):
    write_npz(tmp_path / "a.npz", n=100)
    a, b = npz(tmp_path / "a.npz"), npz(tmp_path / "a.npz")
    assert torch.equal(a.train.views[2], b.train.views[2])
    loads = [npz(tmp_path / "a.npz", standardize=False, seed=s) for s in (0, 0, 3)]
    ids = [d.test.views[0][:, 0] for d in loads]  # feature 0 = sample index
    assert torch.equal(ids[0], ids[1]) and not torch.equal(ids[0], ids[2])
    split = np.where(np.arange(100) % 4 == 0, "test", "train")
    write_npz(tmp_path / "s.npz", n=100, split=split)
    given = npz(tmp_path / "s.npz", standardize=False)
    assert (len(given.train), len(given.test)) == (75, 25)
    assert (given.test.views[0][:, 0].long() % 4 == 0).all()
    write_npz(tmp_path / "i.npz", n=100, split=(np.arange(100) % 2).astype(np.int64))
    assert len(npz(tmp_path / "i.npz").test) == 50


def test_npz_images_and_string_labels(tmp_path):
    n = 30
    grey = np.tile(np.arange(n, dtype=np.uint8)[:, None, None], (1, 6, 6))
    rgb = np.random.default_rng(0).random((n, 3, 8, 8)).astype(np.float32)
    vec = np.arange(n, dtype=np.float64)[:, None] * np.ones((1, 5))
    labels = np.array(["cat", "dog", "emu"])[np.arange(n) % 3]
    np.savez(tmp_path / "m.npz", view_0=grey, view_1=rgb, view_2=vec, labels=labels)
    data = npz(tmp_path / "m.npz")
    assert data.view_shapes == [(1, 6, 6), (3, 8, 8), (5,)]
    assert data.class_names == ["cat", "dog", "emu"]
    for split in (data.train, data.test):
        ids = (split.views[0][:, 0, 0, 0] * 255).round().long()
        assert torch.equal(split.labels, ids % 3)  # grey images scaled by 1/255 and aligned
        assert split.views[1].min() >= 0 and split.views[1].max() <= 1  # images untouched
    np.savez(tmp_path / "bad.npz", view_0=rgb * 3, labels=labels)
    with pytest.raises(DataError, match=r"float images .* \[0, 1\]"):
        npz(tmp_path / "bad.npz")


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"view_0": np.zeros((4, 2))}, "no 'labels'"),
        ({"labels": np.zeros(4, int), "x": np.zeros((4, 2))}, "no view arrays"),
        (
            {"labels": np.zeros(4, int), "view_0": np.zeros((4, 2)), "view_2": np.zeros((4, 2))},
            "without gaps",
        ),
        (
            {"labels": np.arange(4) % 2, "view_0": np.zeros((4, 2)), "view_1": np.zeros((3, 2))},
            "view_1: 3",
        ),
        ({"labels": np.arange(4) % 2, "view_0": np.array([[0, np.nan]] * 4)}, "NaN or inf"),
        (
            {
                "labels": np.arange(4) % 2,
                "view_0": np.zeros((4, 2)),
                "split": np.array([0, 1, 2, 0]),
            },
            "other than 0/'train' and 1/'test'",
        ),
        (
            {
                "labels": np.arange(4) % 2,
                "view_0": np.zeros((4, 2)),
                "split": np.array(["train"] * 3 + ["val"]),
            },
            "val",
        ),
        ({"labels": np.arange(4) % 2, "view_0": np.zeros(4)}, "N×1"),
    ],
)
def test_npz_errors(tmp_path, arrays, message):
    np.savez(tmp_path / "e.npz", **arrays)
    with pytest.raises(DataError, match=message):
        npz(tmp_path / "e.npz")


def test_npz_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found.*dataset.path"):
        npz(tmp_path / "nope.npz")


def test_folder_format(tmp_path):
    ids = {"cat": [str(i) for i in range(1, 11)], "dog": [str(i) for i in range(11, 21)]}
    write_folder(tmp_path / "pets", ids, views=3, size=10)
    data = load_dataset(
        {"val_fraction": 0, "name": "folder", "path": str(tmp_path / "pets"), "image_size": 10}
    )
    assert data.view_shapes == [(1, 10, 10), (3, 10, 10), (3, 10, 10)]
    assert data.class_names == ["cat", "dog"] and (len(data.train), len(data.test)) == (16, 4)
    for split in (data.train, data.test):
        sid = (split.views[0][:, 0, 0, 0] * 255).round().long()
        for v in (1, 2):
            assert torch.equal((split.views[v][:, 0, 0, 0] * 255).round().long(), sid)
            assert torch.equal(
                (split.views[v][:, 1, 0, 0] * 255).round().long(), torch.full_like(sid, v)
            )
        assert torch.equal(split.labels, (sid > 10).long())
    small = load_dataset(
        {"val_fraction": 0, "name": "folder", "path": str(tmp_path / "pets"), "image_size": 4}
    )
    assert small.view_shapes[0] == (1, 4, 4)
    # a JPG is as good as a PNG
    (tmp_path / "pets" / "view_2" / "cat" / "3.png").unlink()
    Image.new("RGB", (10, 10), (3, 2, 0)).save(tmp_path / "pets" / "view_2" / "cat" / "3.jpg")
    load_dataset(
        {"val_fraction": 0, "name": "folder", "path": str(tmp_path / "pets"), "image_size": 10}
    )
    (tmp_path / "pets" / "view_1" / "dog" / "17.png").unlink()
    with pytest.raises(DataError, match=r"missing in view_1: 17"):
        load_dataset({"val_fraction": 0, "name": "folder", "path": str(tmp_path / "pets")})
    with pytest.raises(DataError, match="view_<v>/<class>/<sample_id>"):
        load_dataset({"val_fraction": 0, "name": "folder", "path": str(tmp_path)})


def test_multiple_features(tmp_path):
    views, labels = write_mfeat(tmp_path / "mfeat", n=2000)
    for root in (tmp_path / "mfeat", tmp_path):  # the folder or its parent
        data = load_dataset({"val_fraction": 0, "name": "multiple_features", "root": str(root)})
        assert data.view_shapes == [(76,), (216,), (64,), (240,), (47,), (6,)]
        assert (len(data.train), len(data.test)) == (1600, 400)
        assert torch.bincount(data.test.labels).tolist() == [40] * 10
    for x in data.train.views:
        assert torch.allclose(x.mean(0), torch.zeros(x.shape[1]), atol=1e-4)
    raw = load_dataset(
        {"val_fraction": 0, "name": "multiple_features", "root": str(root), "standardize": False}
    )
    for split in (raw.train, raw.test):
        ids = torch.stack([x[:, 0] for x in split.views], 1).round().long()
        assert (ids == ids[:, :1]).all() and torch.equal(split.labels, ids[:, 0] // 200)
    (tmp_path / "mfeat" / "mfeat-zer").unlink()
    with pytest.raises(DataError, match="mfeat-zer.*archive.ics.uci.edu"):
        load_dataset(
            {"val_fraction": 0, "name": "multiple_features", "root": str(tmp_path / "mfeat")}
        )


def test_registry_names_and_options():
    with pytest.raises(DataError) as err:
        load_dataset({"val_fraction": 0, "name": "nope"})
    for name in ("coil20", "coil100", "edge_fmnist", "edge_mnist", "npz", "office31", "folder"):
        assert name in str(err.value)
    with pytest.raises(DataError, match="does not take the option"):
        load_dataset({"val_fraction": 0, "name": "coil20", "colour": True})


def test_dataset_configs_match_loaders():
    from omegaconf import OmegaConf

    files = sorted(CONFIGS.glob("*.yaml"))
    assert {f.stem for f in files} == set(available_datasets())
    for f in files:
        cfg = OmegaConf.load(f)
        assert cfg.name == f.stem and "best_view" in cfg
        params = inspect.signature(_REGISTRY[cfg.name]).parameters
        options = set(cfg) - {"name", "best_view"}
        assert options <= set(params), (f.name, options - set(params))
        for key in options:  # defaults in the config agree with the loader's signature
            value = OmegaConf.to_container(cfg, resolve=False)[key]
            default = params[key].default
            if default is not inspect.Parameter.empty and not str(value).startswith("${"):
                assert value == default, (f.name, key, value, default)
