"""A model carries its preprocessing (issue 23, items 1 and 2).

One real tiny run on a real npz file whose view 0 is unstandardised feature vectors
(which the loader standardises) and whose view 1 is uint8 channels-last images (which
the loader scales and transposes): codes of the *raw* arrays through the notebook API,
``scripts/encode.py`` and ``scripts/evaluate.py`` must equal the codes of the same
samples through the run's own pipeline.
"""

from __future__ import annotations

import logging
import runpy

import numpy as np
import pytest
import torch
from helpers import tiny_run_dict
from PIL import Image

import mrdd
from mrdd.api import ViewsError
from mrdd.config import RunConfig
from mrdd.data import DataError, load_dataset
from mrdd.data.folder import load_folder
from mrdd.data.preprocess import ViewPreprocessing, looks_channels_last
from mrdd.train import load_checkpoint, run
from mrdd.train.checkpoint import atomic_torch_save

N = 48


def _raw_arrays(n: int = N, seed: int = 0) -> dict[str, np.ndarray]:
    """Vectors far from zero mean / unit variance, and uint8 ``N×8×8×3`` images, both
    depending on a 2-class label; a fixed split (rows 0, 5, 10, ... are test)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    vectors = rng.normal(50.0, 20.0, (n, 6)) + 30.0 * labels[:, None]
    images = rng.integers(0, 120, (n, 8, 8, 3)).astype(np.uint8)
    images[labels == 1, :4] += 120
    split = (np.arange(n) % 5 == 0).astype(np.int64)
    return {"view_0": vectors, "view_1": images, "labels": labels, "split": split}


@pytest.fixture(scope="module")
def raw_run(tmp_path_factory):
    """(run directory, the raw arrays, the test rows) of a finished two-stage run."""
    tmp = tmp_path_factory.mktemp("preproc")
    arrays = _raw_arrays()
    np.savez(tmp / "data.npz", **arrays)
    quick = {"n_seeds": 1, "figures": False, "classifiers": [], "regressors": []}
    config = tiny_run_dict(tmp / "data.npz", stage1={"epochs": 1}, stage2={"epochs": 1}, eval=quick)
    run(RunConfig.from_dict(config), tmp / "run")
    return tmp / "run", arrays, np.flatnonzero(arrays["split"] == 1)


def _raw_test_views(arrays, rows):
    return [arrays["view_0"][rows], arrays["view_1"][rows]]


def test_layout_rule():
    assert looks_channels_last((5, 16, 16, 4)) and looks_channels_last((5, 8, 8, 3))
    assert not looks_channels_last((5, 3, 8, 8))  # channels-first
    assert not looks_channels_last((5, 3, 8, 3))  # the second axis wins
    assert not looks_channels_last((5, 16, 16, 5)) and not looks_channels_last((5, 8, 3))


@pytest.mark.parametrize(
    ("shape", "expected"),
    [((12, 16, 16, 4), (4, 16, 16)), ((12, 8, 8, 3), (3, 8, 8)), ((12, 3, 8, 8), (3, 8, 8))],
    ids=["NHWC rgba", "NHWC rgb", "NCHW"],
)
def test_npz_images_are_read_channels_first_and_channels_last_is_logged(
    tmp_path, caplog, shape, expected
):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, shape).astype(np.uint8)
    labels = np.arange(12) % 2
    np.savez(tmp_path / "d.npz", view_0=images, labels=labels)
    with caplog.at_level(logging.WARNING, logger="mrdd"):
        splits = load_dataset({"name": "npz", "path": str(tmp_path / "d.npz"), "val_fraction": 0})
    assert splits.view_shapes == [expected]
    logged = [r.getMessage() for r in caplog.records if "channels-last" in r.getMessage()]
    assert len(logged) == (shape[1] != expected[0])
    nchw = images if shape[1] == expected[0] else images.transpose(0, 3, 1, 2)
    both = torch.cat([splits.train.views[0], splits.test.views[0]])
    assert sorted(map(tuple, both.flatten(1).tolist())) == sorted(
        map(tuple, (torch.from_numpy(nchw).float() / 255).flatten(1).tolist())
    )


def test_the_run_records_its_preprocessing(raw_run):
    run_dir, arrays, _ = raw_run
    payload = load_checkpoint(run_dir / "mrdd.pt")
    vec, img = payload["preprocessing"]
    train = arrays["view_0"][arrays["split"] == 0]
    torch.testing.assert_close(vec["mean"], torch.from_numpy(train.mean(0)))
    torch.testing.assert_close(vec["std"], torch.from_numpy(train.std(0)))
    assert img == {
        "kind": "image", "mean": None, "std": None, "resized_to": None, "channels_last": True
    }  # fmt: skip
    assert payload["view_shapes"] == [[6], [3, 8, 8]]  # (N, 8, 8, 3) read as 3-channel 8×8


def test_codes_of_raw_views_equal_the_pipeline_codes(raw_run):
    run_dir, arrays, rows = raw_run
    trained = mrdd.load(run_dir)
    splits = load_dataset(trained.config.dataset)
    pipeline = trained.encode(splits.test.views, prepared=True)
    raw = trained.encode(_raw_test_views(arrays, rows))
    torch.testing.assert_close(raw.c, pipeline.c)
    for s_raw, s_pipe in zip(raw.s, pipeline.s, strict=True):
        torch.testing.assert_close(s_raw, s_pipe)
    # channels-first raw images and float images in [0, 1] are the same input
    nchw = [arrays["view_0"][rows], arrays["view_1"][rows].transpose(0, 3, 1, 2) / 255.0]
    torch.testing.assert_close(trained.encode(nchw).c, pipeline.c)
    # what the bug did: raw vectors taken as they are give other codes
    unprepared = trained.encode([arrays["view_0"][rows], splits.test.views[1]], prepared=True)
    assert (unprepared.c - pipeline.c).abs().max() > 10 * (pipeline.c - raw.c).abs().max()
    reps = trained.representations(_raw_test_views(arrays, rows))
    torch.testing.assert_close(reps["C"], pipeline.c)


def test_impute_takes_raw_views_and_answers_in_their_units(raw_run):
    run_dir, arrays, rows = raw_run
    trained = mrdd.load(run_dir)
    splits = load_dataset(trained.config.dataset)
    available = torch.tensor([[True, False], [False, True]] * (len(rows) // 2))
    prepared = trained.impute(splits.test.views, available, prepared=True)
    raw = trained.impute(_raw_test_views(arrays, rows), available)
    prep = trained.preprocessing.views[0]
    torch.testing.assert_close(raw[0], prep.restore(prepared[0]))  # vectors unstandardised
    present = available[:, 0]
    torch.testing.assert_close(
        raw[0][present], torch.from_numpy(arrays["view_0"][rows]).float()[present]
    )
    torch.testing.assert_close(raw[1], prepared[1])  # images: float in [0, 1], N×C×H×W


def test_float_images_in_0_255_are_refused_like_the_loaders_do(raw_run, tmp_path):
    run_dir, arrays, rows = raw_run
    trained = mrdd.load(run_dir)
    views = [arrays["view_0"][rows], arrays["view_1"][rows].astype(np.float32)]
    with pytest.raises(ViewsError, match=r"view 1 holds float images with values in \[0, 2"):
        trained.encode(views)
    np.savez(tmp_path / "f.npz", **{**arrays, "view_1": arrays["view_1"].astype(np.float32)})
    with pytest.raises(DataError, match=r"view_1 holds float images with values in \[0, 2"):
        load_dataset({"name": "npz", "path": str(tmp_path / "f.npz")})


def test_old_checkpoint_without_preprocessing_loads_and_says_so(raw_run, tmp_path, caplog):
    run_dir, arrays, rows = raw_run
    payload = load_checkpoint(run_dir / "mrdd.pt")
    del payload["preprocessing"]
    atomic_torch_save(payload, tmp_path / "mrdd.pt")
    with caplog.at_level(logging.WARNING, logger="mrdd"):
        old = mrdd.load(tmp_path / "mrdd.pt")
    assert "records no preprocessing" in caplog.text
    assert not old.preprocessing.recorded
    raw = _raw_test_views(arrays, rows)
    images = raw[1].transpose(0, 3, 1, 2) / 255.0
    as_given = mrdd.load(run_dir).encode([raw[0], images], prepared=True)
    torch.testing.assert_close(old.encode(raw).c, as_given.c)  # vectors used as given


def _run_script(name: str, args: list[str]) -> int:
    return runpy.run_path(f"scripts/{name}.py")["main"](args)


def test_encode_script_prepares_other_data_with_the_runs_statistics(raw_run, tmp_path):
    """A new file of raw samples (the run's test rows) is standardised with the run's
    training statistics, not with its own: the script's codes are the API's codes."""
    run_dir, arrays, rows = raw_run
    other = {k: v[rows] for k, v in arrays.items() if k != "split"}
    other["split"] = np.arange(len(rows)) % 3 == 0
    np.savez(tmp_path / "new.npz", **other)
    out = tmp_path / "codes.npz"
    args = [f"run_dir={run_dir}", f"dataset.path={tmp_path / 'new.npz'}", f"out={out}"]
    assert _run_script("encode", [*args, "dataset.val_fraction=0"]) == 0
    codes = np.load(out)
    trained = mrdd.load(run_dir)
    order = np.concatenate([np.flatnonzero(~other["split"]), np.flatnonzero(other["split"])])
    expected = trained.encode([other["view_0"][order], other["view_1"][order]]).c
    np.testing.assert_allclose(codes["C"], expected.numpy(), rtol=1e-5, atol=1e-6)
    own = load_dataset({"name": "npz", "path": str(tmp_path / "new.npz"), "val_fraction": 0})
    own_stats = trained.encode(own.train.views, prepared=True).c  # the file's own statistics
    assert (own_stats - expected[: len(own.train)]).abs().max() > 1e-2


def test_folder_images_are_resized_by_the_api_as_by_the_loader(tmp_path):
    rng = np.random.default_rng(2)
    images = {}
    for k in range(8):
        cls = f"c{k % 2}"
        (tmp_path / "view_0" / cls).mkdir(parents=True, exist_ok=True)
        images[f"s{k}"] = rng.integers(0, 256, (12, 12), dtype=np.uint8)
        Image.fromarray(images[f"s{k}"]).save(tmp_path / "view_0" / cls / f"s{k}.png")
    splits = load_folder(str(tmp_path), image_size=8, test_fraction=0.25)
    assert splits.preprocessing.views[0].resized_to == 8
    ids = sorted(images)
    raw = torch.from_numpy(np.stack([images[i] for i in ids]))  # N×H×W uint8, 12×12
    prepared = ViewPreprocessing("image", resized_to=8).prepare(raw, (1, 8, 8), "view 0")
    loaded = torch.cat([splits.train.views[0], splits.test.views[0]])
    assert sorted(map(tuple, loaded.flatten(1).tolist())) == sorted(
        map(tuple, prepared.flatten(1).tolist())
    )
