"""Data that loads but cannot give a meaningful run is refused before training, by every
loader (mrdd/data/checks.py): empty data or views, constant views, fewer than two classes,
test classes unseen in training, values beyond float32; 16-bit PNGs keep their range."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import make_views, run_train_script, write_image_npz
from PIL import Image

from mrdd.data import DataError, DatasetSplits, MultiViewData, load_dataset
from mrdd.data.checks import check_splits

RNG = np.random.default_rng(0)
LABELS = np.arange(20) % 2
VECTORS = RNG.random((20, 3))

# (npz arrays, loader options, message): each a class of bad data, written as a real file
BAD_NPZ = {
    "no samples": (
        {"view_0": np.zeros((0, 3)), "labels": np.zeros(0, np.int64)},
        {},
        r"the dataset holds no samples \(0 labels\)",
    ),
    "a view with zero features": (
        {"view_0": VECTORS, "view_1": np.zeros((20, 0)), "labels": LABELS},
        {},
        r"view_1 has shape \(20, 0\), so its samples hold no values; .* Drop the view",
    ),
    "an image view of zero height": (
        {"view_0": VECTORS, "view_1": np.zeros((20, 1, 0, 4), np.float32), "labels": LABELS},
        {},
        r"view_1 has shape \(20, 1, 0, 4\), so its samples hold no values",
    ),
    "a constant view": (
        {"view_0": VECTORS, "view_1": np.full((20, 4), 7.0), "labels": LABELS},
        {},
        r"view_1 is the same in every sample \(constant\)",
    ),
    "a single class": (
        {"view_0": VECTORS, "labels": np.full(20, 3)},
        {},
        r"every sample has the label '3'; .* at least two classes",
    ),
    "NaN labels": (
        {"view_0": VECTORS, "labels": np.where(LABELS == 0, np.nan, 1.0)},
        {},
        r"labels must be integers \(or strings\), got floats that are NaN",
    ),
    "fractional labels": (
        {"view_0": VECTORS, "labels": LABELS + 0.5},
        {},
        r"labels must be integers \(or strings\)",
    ),
    "values beyond float32": (
        {"view_0": (VECTORS + 1) * 1e39, "labels": LABELS},
        {},
        r"view_0 holds values as large as .*e\+39 \(in 20 samples\), beyond the float32 "
        r"range .* Rescale the view",
    ),
    "16-bit integer images": (
        {
            "view_0": (40000 + np.arange(320).reshape(20, 1, 4, 4)).astype(np.uint16),
            "labels": LABELS,
        },
        {},
        r"view_0 holds uint16 images .* divide 16-bit images by 65535",
    ),
    "a split with one test class": (
        {"view_0": VECTORS, "labels": LABELS, "split": (np.arange(20) == 4).astype(np.int64)},
        {},
        r"the test split holds only the class '0'; both splits need at least two classes",
    ),
    "a test class absent from training": (
        {
            "view_0": RNG.random((21, 3)),
            "labels": np.r_[LABELS, 2],
            "split": np.r_[np.arange(20) % 5 == 0, True].astype(np.int64),
        },
        {},
        r"the class\(es\) '2' have test samples but no training sample",
    ),
    "a stored split leaving a class out of training": (
        {
            "view_0": VECTORS,
            "labels": np.r_[np.zeros(18, np.int64), 1, 1],
            "split": np.r_[np.zeros(16, np.int64), 1, 1, 1, 1],
        },
        {},
        r"the training split holds only the class '0'",
    ),
    "a view absent in every training sample": (
        {
            "view_0": VECTORS,
            "view_1": RNG.random((20, 2)),
            "labels": LABELS,
            "available": np.tile([1, 0], (20, 1)),
        },
        {},
        r"view\(s\) \[1\] are absent in every training sample",
    ),
}


@pytest.mark.parametrize("case", BAD_NPZ, ids=list(BAD_NPZ))
def test_bad_npz_is_refused_naming_the_file(tmp_path, case):
    arrays, options, message = BAD_NPZ[case]
    path = tmp_path / "mine.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=message) as raised:
        load_dataset({"val_fraction": 0, "name": "npz", "path": str(path), **options})
    assert str(raised.value).startswith(f"{path}: ")
    assert "\n" not in str(raised.value)


def test_single_class_data_stops_the_script_before_training(tmp_path, monkeypatch, capsys):
    """The tester's case: one class trained both stages, then crashed in evaluation."""
    npz = tmp_path / "data.npz"
    write_image_npz(npz, labels=np.zeros(48, np.int64))
    with pytest.raises(SystemExit) as exited:
        run_train_script(
            monkeypatch, "dataset=npz", f"dataset.path={npz}", "run.device=cpu",
            f"hydra.run.dir={tmp_path / 'run'}",
        )  # fmt: skip
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {npz}: every sample has the label '0'")
    assert err.count("\n") == 1
    assert not list((tmp_path / "run").glob("*.pt"))


def test_checks_apply_to_splits_of_any_loader():
    """A loader registered by a user builds DatasetSplits itself; load_dataset checks them."""
    views, labels = make_views(12)
    data = MultiViewData(views, labels, "mine")
    train_only_class_0 = torch.nonzero(labels == 0).flatten()
    splits = DatasetSplits(
        train=data.subset(train_only_class_0[:4]),
        test=data.subset(torch.arange(12)),
        num_classes=2,
        name="mine",
        class_names=["even", "odd"],
    )
    with pytest.raises(
        DataError, match=r"my source: the training split holds only the class 'even'"
    ):
        check_splits(splits, "my source")


# --- image folders ------------------------------------------------------------------------


def _folder(root, images_of_view):
    """``root/view_<v>/<class>/<id>.png`` for 2 classes × 3 samples; ``images_of_view(v, i)``
    gives the image of sample ``i`` (0..5, class ``i // 3``) in view ``v``."""
    for v in range(2):
        for i in range(6):
            d = root / f"view_{v}" / f"class{i // 3}"
            d.mkdir(parents=True, exist_ok=True)
            images_of_view(v, i).save(d / f"{i}.png")


def _tiny_folder(root) -> dict:
    """The dataset options of a :func:`_folder`: a third of its 6 samples tested on, so
    that the test split holds one sample of each class (``round(0.34 · 6) = 2``)."""
    return {
        "val_fraction": 0,
        "name": "folder",
        "path": str(root),
        "image_size": 4,
        "test_fraction": 0.34,
    }


def _grey16(value: int) -> Image.Image:
    return Image.fromarray(np.full((4, 4), value, np.uint16))


def _rgb(value: int) -> Image.Image:
    return Image.fromarray(np.full((4, 4, 3), value, np.uint8))


def _by_id(split, v):
    """View ``v`` of a split ordered by sample id (the first pixel of view 1 is 10 × id)."""
    ids = (split.views[1][:, 0, 0, 0] * 255 / 10).round().long()
    return ids, split.views[v]


def test_16_bit_greyscale_pngs_are_read_at_their_real_range(tmp_path):
    values = [0, 255, 1000, 30000, 50000, 65535]  # all but two would be white at 8 bits
    _folder(tmp_path, lambda v, i: _grey16(values[i]) if v == 0 else _rgb(10 * i))
    assert Image.open(tmp_path / "view_0" / "class0" / "1.png").mode == "I;16"
    data = load_dataset(_tiny_folder(tmp_path))
    assert data.view_shapes[0] == (1, 4, 4)
    for split in (data.train, data.test):
        ids, grey = _by_id(split, 0)
        expected = torch.tensor([values[i] / 65535 for i in ids.tolist()])
        torch.testing.assert_close(grey[:, 0, 2, 2], expected)


def test_16_bit_grey_and_8_bit_rgb_in_one_view_make_an_rgb_view(tmp_path):
    _folder(
        tmp_path,
        lambda v, i: (_grey16(13107 * i) if i % 2 else _rgb(51 * i)) if v == 0 else _rgb(10 * i),
    )
    data = load_dataset(_tiny_folder(tmp_path))
    assert data.view_shapes[0] == (3, 4, 4)
    for split in (data.train, data.test):
        ids, rgb = _by_id(split, 0)
        expected = (ids * 0.2).float()  # 13107 / 65535 = 51 / 255 = 0.2
        for channel in range(3):
            torch.testing.assert_close(rgb[:, channel, 1, 1], expected)


def test_a_file_that_is_not_an_image_is_named(tmp_path):
    _folder(tmp_path, lambda v, i: _rgb(10 * i + v))
    bad = tmp_path / "view_0" / "class1" / "4.png"
    bad.write_text("not a picture")
    with pytest.raises(DataError, match=rf"{bad}.*Replace or remove the file"):
        load_dataset({"val_fraction": 0, "name": "folder", "path": str(tmp_path), "image_size": 4})


def test_a_folder_with_one_class_is_refused(tmp_path):
    for v in range(2):
        d = tmp_path / f"view_{v}" / "only"
        d.mkdir(parents=True)
        for i in range(5):
            _rgb(20 * i + v).save(d / f"{i}.png")
    with pytest.raises(DataError, match=rf"{tmp_path}: every sample has the label 'only'"):
        load_dataset({"val_fraction": 0, "name": "folder", "path": str(tmp_path), "image_size": 4})
