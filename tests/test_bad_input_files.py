"""One clear line for broken data files and misuse of the notebook API (issue 23,
item 6): each names the file or argument and what to do, never a deep traceback."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import TINY_MODEL, make_views, run_train_script, write_image_npz

import mrdd
from mrdd.api import ViewsError, build_model
from mrdd.config import RunConfig
from mrdd.data import DataError, load_dataset
from mrdd.train import CheckpointError


def _load(path):
    return load_dataset({"name": "npz", "path": str(path)})


def _bit_flipped(path):
    """``path`` with one bit of view_0's stored values flipped (the zip's CRC then fails)."""
    views, _ = make_views(48)
    data = bytearray(path.read_bytes())
    at = bytes(data).find(views[0].numpy().tobytes()[:32]) + 100
    data[at] ^= 0x10
    path.write_bytes(bytes(data))


def _truncated(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _npy_renamed(path):
    np.save(path.with_suffix(".npy"), np.zeros((4, 3)))
    path.with_suffix(".npy").rename(path)


def _text(path):
    path.write_text("view_0,labels\n1,0\n2,1\n")


DAMAGED = {
    "bit-flipped": (_bit_flipped, r"view_0 cannot be read \(BadZipFile: Bad CRC-32.*damaged"),
    "truncated": (_truncated, r"the \.npz archive is damaged or truncated; write it again"),
    ".npy renamed": (_npy_renamed, r"is a single \.npy array \(numpy\.save\), not an \.npz"),
    "text file": (
        _text,
        r"not an \.npz archive \(it starts with b'view_0'; an \.npz file is a zip",
    ),
}


@pytest.mark.parametrize("case", DAMAGED, ids=list(DAMAGED))
def test_damaged_or_foreign_npz_is_refused_in_one_line(tmp_path, case):
    damage, message = DAMAGED[case]
    path = tmp_path / "data.npz"
    write_image_npz(path)
    damage(path)
    with pytest.raises(DataError, match=message) as raised:
        _load(path)
    text = str(raised.value)
    assert "\n" not in text and str(path) in text and "numpy.savez" in text
    assert "pickle" not in text  # never suggest loading unsafely


def test_train_script_reports_a_damaged_npz_in_one_line(tmp_path, monkeypatch, capsys):
    path = tmp_path / "data.npz"
    write_image_npz(path)
    _bit_flipped(path)
    args = ["dataset=npz", f"dataset.path={path}", f"hydra.run.dir={tmp_path / 'run'}"]
    with pytest.raises(SystemExit) as exited:
        run_train_script(monkeypatch, *args)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Bad CRC-32" in err and err.count("\n") == 1


def test_npz_with_empty_arrays_is_refused(tmp_path):
    np.savez(tmp_path / "e.npz", view_0=np.zeros((0, 5)), labels=np.zeros(0, np.int64))
    with pytest.raises(DataError, match=r"e\.npz: the dataset holds no samples"):
        _load(tmp_path / "e.npz")


def test_object_arrays_are_refused_without_suggesting_pickle(tmp_path):
    labels = np.array([0, 1] * 4, dtype=object)
    np.savez(tmp_path / "o.npz", view_0=np.random.rand(8, 3), labels=labels)
    with pytest.raises(DataError, match=r"labels holds Python objects") as raised:
        _load(tmp_path / "o.npz")
    assert "allow_pickle" not in str(raised.value)


# --- mrdd.load ---------------------------------------------------------------------------


def test_load_takes_a_run_directory_or_a_model_file(stage1_run):
    by_dir, by_file = mrdd.load(stage1_run), mrdd.load(stage1_run / "consistency.pt")
    views, _ = make_views(4)
    torch.testing.assert_close(by_dir.encode(views).c, by_file.encode(views).c)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "consistency_state.pt",
            r"consistency_state\.pt is a 'consistency_state' resume state, not",
        ),
        ("nothing_here", r"nothing_here does not exist; pass a training run's directory"),
        ("config.json", r"config\.json could not be read"),
    ],
)
def test_load_says_what_is_wrong_with_the_path(stage1_run, name, message):
    with pytest.raises(CheckpointError, match=message):
        mrdd.load(stage1_run / name)


def test_load_of_a_directory_without_a_model(tmp_path):
    with pytest.raises(CheckpointError, match=r"holds neither mrdd\.pt nor consistency\.pt, so no"):
        mrdd.load(tmp_path)


# --- the notebook API --------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(stage1_run):
    return mrdd.load(stage1_run)


def test_impute_without_a_mask_is_refused_at_the_api(trained):
    views, _ = make_views(4)
    with pytest.raises(ViewsError, match=r"impute needs available, an N×V mask"):
        trained.impute(views, None)
    with pytest.raises(ViewsError, match=r"source must be 'auto', 'specific' or 'consistency'"):
        trained.impute(views, np.ones((4, 2), bool), source="best")


def test_nan_in_a_present_view_is_refused_but_absent_entries_may_hold_anything(trained):
    views, _ = make_views(4)
    views[1][0] = float("nan")
    with pytest.raises(ViewsError, match=r"view 1 contains NaN or inf values in 1 samples"):
        trained.encode(views)
    mask = np.array([[True, False]] + [[True, True]] * 3)
    assert torch.isfinite(trained.encode(views, available=mask).c).all()


def test_views_in_the_wrong_order_are_named():
    """A model of a vector and an image view, given the image first."""
    shapes = [(6,), (1, 8, 8)]
    model = build_model(RunConfig.from_dict({"model": TINY_MODEL}), shapes, "consistency")
    swapped = mrdd.TrainedModel(RunConfig.from_dict({"model": TINY_MODEL}), shapes, model, 0)
    with pytest.raises(ViewsError, match=r"view 0 has per-sample shape \(1, 8, 8\).*another order"):
        swapped.encode([torch.rand(3, 1, 8, 8), torch.rand(3, 6)])
