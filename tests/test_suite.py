"""The development suite (mrdd/data/suite.py, scripts/make_suite.py): its descriptors, its
npz files as the real loader reads them, its splits and fitted view, and the floors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mrdd.data import DataError, load_dataset
from mrdd.data import descriptors as d
from mrdd.data.base import DatasetSplits, MultiViewData
from mrdd.data.edge_mnist import load_edge_mnist_5k
from mrdd.data.suite import (
    SOURCES,
    SUITE,
    build,
    descriptor_views,
    fitting_rows,
    split_mask,
    write,
)
from mrdd.eval.floors import floor_summary_markdown, floors_markdown, raw_floors

ROOT = Path(__file__).resolve().parents[1]


def test_block_means_and_profiles_by_hand():
    image = np.arange(16, dtype=float).reshape(1, 4, 4)
    assert d.block_means(image, 2).tolist() == [[2.5, 4.5, 10.5, 12.5]]
    assert d.ink_profiles(image).tolist() == [[6, 22, 38, 54, 24, 28, 32, 36]]
    with pytest.raises(ValueError, match="does not divide"):
        d.block_means(image, 3)


def test_orientation_histograms_of_a_vertical_edge():
    image = np.zeros((1, 4, 4))
    image[:, :, 2:] = 1.0  # brightness rises along x only: every gradient points at angle 0
    hist = d.orientation_histograms(image, 2).reshape(4, d.ORIENTATION_BINS)
    assert np.allclose(hist[:, 1:], 0) and np.isclose(np.linalg.norm(hist), 1.0)
    assert np.allclose(hist[:, 0], 0.5)  # four cells, each holding an equal edge share


def test_fourier_magnitudes_ignore_position_and_intensity():
    rng = np.random.default_rng(0)
    image = rng.random((1, 8, 8))
    moved = np.roll(image, (2, 3), axis=(1, 2))
    features = d.fourier_magnitudes(image, 3)
    assert features.shape == (1, 2 + 2 * 5)  # k_x = 0: k_y 1..2; k_x 1..2: k_y -2..2
    assert np.allclose(d.fourier_magnitudes(moved, 3), features)
    assert np.allclose(d.fourier_magnitudes(3 * image, 3), features)


def test_skeleton_thins_a_thick_bar_to_one_line():
    bar = np.zeros((1, 9, 12), dtype=bool)
    bar[0, 3:6, 1:11] = True  # three pixels thick
    line = d.skeleton(bar)[0]
    assert line.sum() >= 6 and np.flatnonzero(line.any(1)).tolist() == [4]  # the middle row
    assert not (line & ~bar[0]).any()


def load(path: Path, **options) -> DatasetSplits:
    return load_dataset({"name": "npz", "path": str(path), **options})


def test_breast_cancer_npz_reads_with_stratified_disjoint_splits(tmp_path):
    data = build("breast_cancer")
    assert [x.shape for x in data.views] == [(569, 10)] * 3
    # round(0.2 · 569) = 114 test tumours; quotas 42.4 and 71.4 give 42 + 71, and the one
    # left goes to the tie's lower class id, malignant (the one stratified rounding rule)
    assert [data.is_test[data.labels == c].sum() for c in (0, 1)] == [43, 71]
    raw = load(write(data, tmp_path), standardize=False)
    assert raw.class_names == ["malignant", "benign"] and raw.view_shapes == [(10,)] * 3
    assert (len(raw.train), len(raw.val), len(raw.test)) == (409, 46, 114)
    assert torch.equal(raw.test.views[2], torch.from_numpy(data.views[2][data.is_test]))
    rows = {split: {tuple(r) for r in raw.split(split).views[0].tolist()} for split in raw.names}
    assert sum(map(len, rows.values())) == 569  # every sample once, in one split
    assert not (rows["train"] & rows["val"]) and not (rows["val"] & rows["test"])


@pytest.mark.parametrize(
    "name,shapes",
    [
        ("mnist_edge16", [(1, 16, 16)] * 2),
        ("digits_edge16", [(1, 16, 16)] * 2),
        ("mnist_3views", [(1, 32, 32)] * 3),
        ("mnist_features", [(49,), (64,), (128,), (84,), (56,)]),
    ],
)
def test_slices_load_through_the_npz_loader(tmp_path, name, shapes):
    data = build(name, per_class=20)
    splits = load(write(data, tmp_path))
    assert splits.view_shapes == shapes and splits.num_classes == 10
    assert (len(splits.train), len(splits.val), len(splits.test)) == (144, 16, 40)
    for x in splits.train.views:
        if x.ndim == 4:
            assert float(x.min()) >= 0 and float(x.max()) <= 1 and float(x.max()) > 0.5


def test_paper_views_are_the_embedded_default():
    data = build("mnist_edge32")
    embedded = load_edge_mnist_5k()
    for v, view in enumerate(data.views):
        assert torch.equal(embedded.test.views[v], torch.from_numpy(view[data.is_test]))
    assert torch.equal(embedded.test.labels, torch.from_numpy(data.labels[data.is_test]))


def test_builds_are_deterministic():
    a, b = build("mnist_features", per_class=10), build("mnist_features", per_class=10)
    assert a.digest() == b.digest()
    assert a.digest() != build("mnist_features", per_class=11).digest()


def test_pca_view_sees_training_rows_only():
    images, labels, _ = SOURCES["mnist"].load()
    keep = np.concatenate([np.flatnonzero(labels == c)[:30] for c in range(10)])
    images, labels = images[keep], labels[keep]
    fit = fitting_rows(labels, split_mask(labels))
    others = np.setdiff1d(np.arange(len(labels)), fit)  # the val and test rows
    changed = images.copy()
    changed[others] = np.random.default_rng(0).random(changed[others].shape)
    before, after = descriptor_views(images, labels)[1], descriptor_views(changed, labels)[1]
    assert np.allclose(before[fit], after[fit], atol=1e-5)
    assert not np.allclose(before[others], after[others])


def test_unknown_dataset_is_one_clear_error():
    with pytest.raises(DataError, match="unknown suite dataset 'nope'; the suite has"):
        build("nope")


def planted_splits() -> DatasetSplits:
    """View 0 (2 features) separates the classes in train and val, view 1 (1 feature)
    splits them in half; in test the roles are swapped."""
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    cls = labels.double() * 2 - 1  # ±1 by class
    other = torch.tensor([-1.0, 1, -1, 1, -1, 1, -1, 1])  # ±1 across classes

    def split(informative, half, name):
        views = [torch.stack([informative, informative], 1).float(), half[:, None].float()]
        return MultiViewData(views, labels, name)

    return DatasetSplits(
        train=split(cls, other, "train"),
        val=split(cls, other, "val"),
        test=split(other, cls, "test"),
        num_classes=2,
        name="planted",
    )


@pytest.mark.parametrize("scaling", ["standardised", "as_loaded"])
def test_floors_of_a_planted_case_by_hand(scaling):
    floors = raw_floors(planted_splits(), n_seeds=2)  # train is standardised: scalings agree
    best = floors[scaling]["best_view"]
    assert best["view"] == 0 and best["val_acc_per_view"] == [1.0, 0.5]
    assert {k: best["val"][k]["mean"] for k in ("acc", "nmi", "ari")} == {
        "acc": 1.0,
        "nmi": 1.0,
        "ari": 1.0,
    }
    # chosen on val, so test reports view 0, which splits the test classes in half:
    # 2×2 contingency of 2s, ARI = (4 - 12·12/28) / (12 - 12·12/28) = -1/6
    assert best["test"]["acc"]["mean"] == 0.5
    assert best["test"]["nmi"]["mean"] == pytest.approx(0.0, abs=1e-12)
    assert best["test"]["ari"]["mean"] == pytest.approx(-1 / 6)
    # the concatenation clusters along view 0's two features (half the within-cluster
    # variance of clustering along view 1's one): right on val, half right on test
    concat = floors[scaling]["concat"]
    assert concat["val"]["acc"]["mean"] == 1.0 and concat["test"]["acc"]["mean"] == 0.5
    assert concat["val"]["acc"]["std"] == 0.0 and floors["n_seeds"] == 2
    # every candidate is perfect on val: the first one, the standardised concatenation, wins
    assert (floors["floor"]["scaling"], floors["floor"]["kind"]) == ("standardised", "concat")
    assert floors["floor"]["test"] == floors["standardised"]["concat"]["test"]


def test_floor_is_the_stronger_scaling_on_val():
    """One feature separates the classes, 20 carry tiny noise: standardising blows the
    noise up to the signal's scale, so the unscaled views make the floor."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(40) % 2

    def split(name):
        signal = labels[:, None].float() * 10
        noise = torch.randn(len(labels), 20, generator=g) * 1e-3
        return MultiViewData([torch.cat([signal, noise], 1)], labels, name)

    splits = DatasetSplits(split("train"), split("test"), 2, "noisy", val=split("val"))
    floors = raw_floors(splits, n_seeds=1)
    assert floors["standardised"]["concat"]["val"]["acc"]["mean"] < 0.9
    assert (floors["floor"]["scaling"], floors["floor"]["val"]["acc"]["mean"]) == ("as_loaded", 1.0)


def test_floors_need_a_val_split():
    splits = planted_splits()
    splits.val = None
    with pytest.raises(ValueError, match="floors need a val split"):
        raw_floors(splits)


def test_script_builds_and_writes_floors(tmp_path, capsys):
    import make_suite  # scripts/ is on the path (conftest.py)

    report = tmp_path / "floors.json"
    argv = ["--only", "breast_cancer", "--out", str(tmp_path), "--floors", str(report)]
    assert make_suite.main([*argv, "--n-seeds", "1"]) == 0
    entry = json.loads(report.read_text())["breast_cancer"]
    assert entry["samples"] == {"train": 409, "val": 46, "test": 114}
    assert entry["floors"]["floor"]["test"]["acc"]["mean"] > 0.8  # the classes separate well
    table = floors_markdown({"breast_cancer": entry})
    assert table in capsys.readouterr().out and table.count("\n") == 2 + 4
    assert "| breast_cancer | as_loaded | best view: " in table
    summary = floor_summary_markdown({"breast_cancer": entry})
    floor = entry["floors"]["floor"]
    assert f"| breast_cancer | {floor['scaling']}, " in summary and summary.count("\n") == 3
    kept = {**json.loads(report.read_text()), "digits_edge16": entry}  # as if built before
    report.write_text(json.dumps(kept))
    assert make_suite.main([*argv, "--n-seeds", "1"]) == 0  # rebuilds breast_cancer only
    assert json.loads(report.read_text()).keys() == {"breast_cancer", "digits_edge16"}
    assert "| digits_edge16 | standardised | concatenated |" in capsys.readouterr().out


def test_suite_configs_compose_to_their_npz_files():
    from config_schema import register
    from hydra import compose, initialize_config_dir

    register()
    files = sorted((ROOT / "configs" / "dataset" / "suite").glob("*.yaml"))
    assert {f.stem for f in files} == set(SUITE)
    with initialize_config_dir(str(ROOT / "configs"), version_base="1.3"):
        for f in files:
            cfg = compose("config", [f"dataset=suite/{f.stem}", "data_root=/d"]).dataset
            assert (cfg.name, cfg.path, cfg.standardize) == ("npz", f"/d/suite/{f.stem}.npz", True)
