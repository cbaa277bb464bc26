"""The validation split: carved from training data, stratified, seeded, and what the
training-time probe watches; test is never used to choose."""

import pytest
import torch
from helpers import make_views, write_image_npz

from mrdd.config import ConfigError, RunConfig
from mrdd.data import DataError, DatasetSplits, MultiViewData, load_dataset
from mrdd.data.base import carve_validation
from mrdd.train.monitor import TrainingMonitor


def _splits(n: int = 60) -> DatasetSplits:
    views, labels = make_views(n)
    data = MultiViewData(views, labels, "tiny")
    return DatasetSplits(data.subset(torch.arange(40)), data.subset(torch.arange(40, n)), 2, "t")


def test_val_is_a_stratified_seeded_part_of_train_disjoint_from_test(tmp_path):
    npz = tmp_path / "data.npz"
    write_image_npz(npz, n=100)
    options = {"name": "npz", "path": str(npz), "val_fraction": 0.25, "val_seed": 3}
    with_val = load_dataset(options)
    without = load_dataset({**options, "val_fraction": 0.0})
    assert with_val.names == ["train", "val", "test"] and without.names == ["train", "test"]
    assert len(with_val.train) + len(with_val.val) == len(without.train)
    assert torch.equal(with_val.test.views[0], without.test.views[0])  # test untouched
    assert torch.bincount(with_val.val.labels).tolist() == [10, 10]  # 25% of each class of 40
    rows = {tuple(x.flatten().tolist()) for x in without.train.views[0]}
    carved = [tuple(x.flatten().tolist()) for x in with_val.val.views[0]]
    assert all(r in rows for r in carved)  # val rows come from train
    kept = {tuple(x.flatten().tolist()) for x in with_val.train.views[0]}
    assert not kept & set(carved)
    again = load_dataset(options)
    assert torch.equal(again.val.views[0], with_val.val.views[0])  # seeded
    other = load_dataset({**options, "val_seed": 4})
    assert not torch.equal(other.val.views[0], with_val.val.views[0])
    assert with_val.identity["split"]["val_fraction"] == 0.25
    assert with_val.identity["val"]["samples"] == 20


def test_small_datasets_still_get_the_requested_validation_size():
    """5 samples a class are too few for 10% per class: the total is kept, not 0."""
    labels = torch.arange(50) % 10
    data = MultiViewData([torch.rand(50, 3)], labels, "small")
    splits = carve_validation(DatasetSplits(data, data, 10, "small"), 0.1, 0)
    assert len(splits.val) == 5 and len(splits.train) == 45
    assert len(set(splits.val.labels.tolist())) == 5  # five classes give one sample each


def test_a_val_fraction_that_leaves_no_validation_sample_is_refused():
    data = MultiViewData([torch.rand(2, 3)], torch.tensor([0, 1]), "pair")
    with pytest.raises(DataError, match="leaves 2 for training and 0 for validation"):
        carve_validation(DatasetSplits(data, data, 2, "pair"), 0.1, 0)


def test_asking_for_a_missing_val_split_says_how_to_get_one():
    with pytest.raises(DataError, match="val_fraction > 0"):
        _splits().split("val")
    with pytest.raises(ConfigError, match="eval.split=val needs a validation split"):
        RunConfig.from_dict(
            {"dataset": {"name": "edge_mnist_5k", "val_fraction": 0}, "eval": {"split": "val"}}
        )
    with pytest.raises(ConfigError, match=r"dataset.val_fraction must be in \[0, 1\)"):
        RunConfig.from_dict({"dataset": {"name": "edge_mnist_5k", "val_fraction": 1.0}})


def test_the_training_probe_watches_validation_data_never_test(tmp_path, tiny_config):
    splits = carve_validation(_splits(), 0.5, 0)
    monitor = TrainingMonitor(tmp_path, splits, tiny_config, torch.device("cpu"))
    monitor.close()
    val_rows = {tuple(x.flatten().tolist()) for x in splits.val.views[0]}
    assert all(tuple(x.flatten().tolist()) in val_rows for x in monitor.probe.views[0])
    assert "val" in monitor.probe.name


def test_every_clustered_split_must_hold_a_sample_per_class(tiny_config):
    """The val split is clustered too (eval.also_cluster): too small for KMeans is refused
    before training, with the way out, and dropping it from also_cluster accepts it."""
    from mrdd.train.validate import validate_against_data

    splits = carve_validation(_splits(), 0.025, 0)  # 1 val sample, 2 classes
    with pytest.raises(ConfigError, match="val split .eval.also_cluster. holds 1 samples.*remove"):
        validate_against_data(tiny_config, splits)
    validate_against_data(tiny_config.with_overrides({"eval": {"also_cluster": []}}), splits)
    evaluated = tiny_config.with_overrides({"eval": {"split": "val"}})
    with pytest.raises(ConfigError, match="eval.split=val holds 1 samples.*evaluate a larger"):
        validate_against_data(evaluated, splits)
