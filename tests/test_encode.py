"""mrdd.export.encode_dataset and scripts/encode.py: every sample's codes, in order, as npz."""

import runpy
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import tiny_run_dict, write_image_npz

import mrdd
from mrdd.data import DataError, load_dataset
from mrdd.export import encode_dataset
from mrdd.train import run

ROOT = Path(__file__).resolve().parents[1]
REPRESENTATIONS = ["C", "S_0", "S_1", "C+S_best", "C+S_all"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("encode")
    write_image_npz(tmp / "data.npz", n=40)
    config = tiny_run_dict(tmp / "data.npz", eval={"figures": False, "classifiers": []})
    run(mrdd.RunConfig.from_dict(config), tmp / "run")
    return tmp / "run"


@pytest.fixture(scope="module")
def encode_main():
    return runpy.run_path(str(ROOT / "scripts" / "encode.py"))["main"]


def _expected(trained, data, available=None) -> dict[str, np.ndarray]:
    reps = trained.representations(data.views, available)
    return {k: v.numpy() for k, v in reps.items()}


def test_encode_dataset_equals_representations_split_by_split(trained_run):
    trained = mrdd.load(trained_run)
    splits = load_dataset(trained.config.dataset)
    codes = encode_dataset(trained, splits, batch_size=3)  # batches that do not divide N
    assert sorted(codes) == sorted([*REPRESENTATIONS, "labels", "split"])
    parts = [splits.split(name) for name in ("train", "val", "test")]
    names = [name for name in ("train", "val", "test") for _ in range(len(splits.split(name)))]
    assert codes["split"].tolist() == names
    expected = [_expected(trained, part) for part in parts]
    for key in REPRESENTATIONS:
        assert codes[key].dtype == np.float32
        np.testing.assert_allclose(
            codes[key], np.concatenate([e[key] for e in expected]), rtol=1e-5, atol=1e-6
        )
    labels = torch.cat([part.labels for part in parts]).numpy()
    np.testing.assert_array_equal(codes["labels"], labels)
    assert codes["C+S_best"].shape == (len(names), 4 + 3)


def test_samples_with_missing_views_are_encoded_from_the_views_they_have(trained_run):
    trained = mrdd.load(trained_run)
    test = load_dataset(trained.config.dataset).test
    available = torch.ones(len(test), 2, dtype=torch.bool)
    available[::2, 1] = False
    incomplete = test.with_available(available)
    codes = encode_dataset(trained, {"test": incomplete}, batch_size=5)
    expected = _expected(trained, incomplete, available)
    np.testing.assert_allclose(codes["C"], expected["C"], rtol=1e-5, atol=1e-6)
    assert not np.allclose(codes["C"], _expected(trained, test)["C"])


def test_views_of_other_shapes_are_refused(trained_run, tmp_path):
    trained = mrdd.load(trained_run)
    write_image_npz(tmp_path / "big.npz", size=16)
    with pytest.raises(DataError, match=r"trained on views of shapes \[\(1, 8, 8\), \(1, 8, 8\)\]"):
        encode_dataset(trained, load_dataset({"name": "npz", "path": str(tmp_path / "big.npz")}))


def test_script_writes_the_runs_own_dataset(trained_run, tmp_path, encode_main, capsys):
    out = tmp_path / "codes" / "codes.npz"
    assert encode_main([f"run_dir={trained_run}", f"out={out}", "batch_size=7"]) == 0
    assert "codes.npz" in capsys.readouterr().err
    trained = mrdd.load(trained_run)
    splits = load_dataset(trained.config.dataset)
    expected = encode_dataset(trained, splits)  # another batch size: equal up to rounding
    with np.load(out) as saved:
        assert sorted(saved.files) == sorted(expected)
        assert saved["split"].dtype.kind == "U"  # readable without pickle
        np.testing.assert_array_equal(saved["split"], expected["split"])
        np.testing.assert_array_equal(saved["labels"], expected["labels"])
        for key in REPRESENTATIONS:
            np.testing.assert_allclose(saved[key], expected[key], rtol=1e-5, atol=1e-6)


def test_script_encodes_a_new_npz_file(trained_run, tmp_path, encode_main):
    write_image_npz(tmp_path / "new.npz", n=12, split=np.array(["train"] * 8 + ["test"] * 4))
    out = tmp_path / "new_codes.npz"
    argv = [f"run_dir={trained_run}", f"dataset.path={tmp_path / 'new.npz'}", f"out={out}"]
    assert encode_main(argv) == 0
    trained = mrdd.load(trained_run)
    new = load_dataset({"name": "npz", "path": str(tmp_path / "new.npz")})
    with np.load(out) as saved:
        n_train = len(new.train)  # the run's dataset options carve val from the 8 train rows
        assert (
            saved["split"].tolist() == ["train"] * n_train + ["val"] * (8 - n_train) + ["test"] * 4
        )
        expected = _expected(trained, new.train)["C+S_all"]
        np.testing.assert_allclose(saved["C+S_all"][:n_train], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["run_dir={tmp}/nothing", "out={tmp}/c.npz"],
            "nothing does not exist; pass a training run",
        ),
        (["run_dir={run}"], "out= is missing"),
        (["run_dir={run}", "out={tmp}/c.npz", "dataset.path={tmp}/big.npz"], "trained on views"),
        (["run_dir={run}", "out={tmp}/c.npz", "dataset=no_such_set"], "Unknown dataset"),
        (["run_dir={run}", "out={tmp}/c.npz", "batch_size=0"], "positive integer"),
        (["run_dir={run}", "out={tmp}/c.txt"], "must name a .npz file"),
        (["run_dir={run}", "out={tmp}/c.npz", "epochs=3"], "unexpected argument"),
    ],
)
def test_script_reports_bad_input_in_one_line(
    trained_run, tmp_path, encode_main, capsys, argv, message
):
    write_image_npz(tmp_path / "big.npz", size=16)
    argv = [a.format(run=trained_run, tmp=tmp_path) for a in argv]
    assert encode_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert not (tmp_path / "c.npz").exists()
