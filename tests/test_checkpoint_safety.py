"""Checkpoints know their data: a stage-1 encoder or a resume state of other data or
another split is refused naming what differs; writes killed mid-way leave temporary files
that a resume removes; a directory passed as a checkpoint is named; the notebook API
checks what it is given."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import copy_run, make_views, tiny_run_dict, write_image_npz

import mrdd
from mrdd.api import ViewsError
from mrdd.atomic import remove_stale_temporaries
from mrdd.config import RunConfig
from mrdd.data import load_dataset
from mrdd.train import CheckpointError, check_compatible, load_checkpoint, resume, run

ROOT = Path(__file__).resolve().parents[1]


def test_checkpoints_record_the_identity_of_their_data(stage1_run):
    splits = load_dataset({"name": "npz", "path": str(stage1_run.parent / "data.npz")})
    identity = splits.identity
    assert identity["split"] == {
        "seed": 0, "test_fraction": 0.2, "missing_rate": 0.0, "missing_seed": 0,
        "val_fraction": 0.1, "val_seed": 0,
    }  # fmt: skip
    sizes = [identity[split]["samples"] for split in ("train", "val", "test")]
    assert sizes == [34, 4, 10]  # 48 samples: 10 test, then 10% of each class of 38 to val
    for name in ("consistency.pt", "consistency_state.pt"):
        assert load_checkpoint(stage1_run / name)["data"] == identity, name
    again = load_dataset({"name": "npz", "path": str(stage1_run.parent / "data.npz")})
    assert again.identity == identity  # the same file loads to the same fingerprint
    reseeded = load_dataset({"name": "npz", "path": str(stage1_run.parent / "data.npz"), "seed": 1})
    assert reseeded.identity["train"]["content"] != identity["train"]["content"]


def _stage2(tmp_path: Path, ckpt: Path, npz: Path, **dataset) -> RunConfig:
    config = tiny_run_dict(
        npz, stage="disentangle", consistency_ckpt=str(ckpt), dataset={"path": str(npz), **dataset}
    )
    # no stage-1 settings of its own: a stage-2 run takes those of the checkpoint it loads
    del config["stage1"]
    return RunConfig.from_dict(config)


@pytest.mark.parametrize(
    ("dataset", "arrays", "differs"),
    [
        ({"seed": 1}, {}, ["data.split.seed (checkpoint 0, this run 1)", "data.train.content"]),
        (
            {"test_fraction": 0.5},
            {},
            ["data.split.test_fraction (checkpoint 0.2, this run 0.5)", "data.train.samples"],
        ),
        ({}, {"view_0": make_views(48, seed=7)[0][0].numpy()}, ["data.train.content"]),
    ],
    ids=["another split seed", "another test fraction", "another file"],
)
def test_stage1_encoder_of_other_data_or_split_is_refused(
    stage1_run, tmp_path, dataset, arrays, differs
):
    npz = tmp_path / "today.npz"
    write_image_npz(npz, **arrays)
    cfg = _stage2(tmp_path, stage1_run / "consistency.pt", npz, **dataset)
    with pytest.raises(CheckpointError) as raised:
        run(cfg, tmp_path / "stage2")
    message = str(raised.value)
    assert message.startswith(f"{stage1_run / 'consistency.pt'} was written with other settings")
    for field in differs:
        assert field in message
    assert "its training samples may be this run's test samples" in message
    assert "\n" not in message
    assert not list((tmp_path / "stage2").glob("*.pt"))


def test_stage1_encoder_of_the_same_data_is_accepted(stage1_run, tmp_path):
    """A copy of the data file elsewhere is the same data."""
    npz = tmp_path / "moved.npz"
    shutil.copy(stage1_run.parent / "data.npz", npz)
    cfg = _stage2(tmp_path, stage1_run / "consistency.pt", npz)
    splits = load_dataset(cfg.dataset)
    payload = load_checkpoint(stage1_run / "consistency.pt", kind="consistency")
    check_compatible(payload, cfg, splits.view_shapes, "consistency.pt", splits.identity)


def test_resume_state_of_changed_data_is_refused(tmp_path):
    """The data file was rewritten under a stopped run (same path, other content)."""
    write_image_npz(tmp_path / "data.npz")
    cfg = tiny_run_dict(tmp_path / "data.npz", stage="consistency", stage1={"epochs": 1})
    run_dir = tmp_path / "run"
    run(RunConfig.from_dict(cfg), run_dir)
    write_image_npz(tmp_path / "data.npz", view_1=make_views(48, seed=3)[0][1].numpy())
    with pytest.raises(CheckpointError) as raised:
        resume(run_dir)
    message = str(raised.value)
    assert "consistency_state.pt was written with other settings" in message
    assert "data.train.content" in message and "data.test.content" in message


def test_a_directory_given_as_checkpoint_is_named(stage1_run, tmp_path):
    with pytest.raises(CheckpointError) as raised:
        load_checkpoint(stage1_run)
    assert str(raised.value) == (
        f"Checkpoint {stage1_run} is a directory, not a checkpoint file. Point to a file in "
        f"it, e.g. {stage1_run / 'consistency.pt'} (or mrdd.pt)."
    )
    cfg = _stage2(tmp_path, stage1_run, stage1_run.parent / "data.npz")
    with pytest.raises(CheckpointError, match="is a directory, not a checkpoint file"):
        run(cfg, tmp_path / "stage2")


# --- writes killed mid-way -------------------------------------------------------------

#: Saves ``argv[1]`` (a checkpoint) atomically in ``argv[2]`` forked children, each of which
#: SIGKILLs itself after writing 1 MB of it: writes interrupted with no chance to clean up
#: (one interpreter start, since importing mrdd takes seconds). Exits 0 when every child
#: died by SIGKILL.
KILLED_MID_WRITE = """
import os, signal, sys
import torch
from mrdd.train import checkpoint

def write_then_die(obj, f):
    f.write(b"x" * 2**20)
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)

torch.save = write_then_die
for _ in range(int(sys.argv[2])):
    child = os.fork()
    if child == 0:
        checkpoint.atomic_torch_save({"weights": torch.zeros(3)}, sys.argv[1])
        os._exit(0)  # not reached: the write kills the child
    _, status = os.waitpid(child, 0)
    if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
        sys.exit(f"child {child} ended with status {status}, not by SIGKILL")
"""


def _kill_mid_write(path: Path, times: int = 1) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", KILLED_MID_WRITE, str(path), str(times)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_temporaries_of_killed_writes_are_removed_on_resume(stage1_run, tmp_path):
    run_dir = copy_run(stage1_run, tmp_path)
    state = run_dir / "consistency_state.pt"
    before = state.read_bytes()
    _kill_mid_write(state, times=3)
    leftovers = sorted(run_dir.glob(".consistency_state.pt.*.tmp"))
    assert len(leftovers) == 3
    assert all(p.stat().st_size == 2**20 for p in leftovers)
    assert state.read_bytes() == before  # the atomic write kept the old file whole
    keep = [run_dir / "notes.tmp", run_dir / ".hidden.tmp"]  # not ours: kept
    for p in keep:
        p.write_text("mine")

    resume(run_dir)

    assert not list(run_dir.glob(".consistency_state.pt.*.tmp"))
    assert all(p.read_text() == "mine" for p in keep)
    assert any(
        row["task"] == "clustering"
        for row in json.loads((run_dir / "metrics.json").read_text())["scores"]
    )


def test_remove_stale_temporaries_returns_what_it_removed(tmp_path):
    _kill_mid_write(tmp_path / "mrdd.pt")
    (leftover,) = tmp_path.glob(".mrdd.pt.*.tmp")
    assert remove_stale_temporaries(tmp_path) == [leftover]
    assert not leftover.exists() and remove_stale_temporaries(tmp_path) == []


# --- notebook API ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(stage1_run) -> mrdd.TrainedModel:
    return mrdd.load(stage1_run)


def test_api_accepts_numpy_arrays_as_tensors(trained):
    views, _ = make_views(6)
    as_tensors = trained.encode(views).c
    as_numpy = trained.encode([x.double().numpy() for x in views]).c  # float64 arrays
    torch.testing.assert_close(as_numpy, as_tensors)
    as_uint8 = trained.encode([(x * 255).round().to(torch.uint8).numpy() for x in views]).c
    rounded = trained.encode([(x * 255).round() / 255 for x in views]).c
    torch.testing.assert_close(as_uint8, rounded)  # uint8 images scaled by 1/255
    mask = np.array([[True, False], [False, True]] * 3)
    torch.testing.assert_close(
        trained.encode(views, available=mask).c,
        trained.encode(views, available=torch.from_numpy(mask)).c,
    )
    assert set(trained.representations([x.numpy() for x in views])) == {"C"}


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda v: v[:1], ViewsError, r"expected 2 views, got 1"),
        (lambda v: [v[0], v[1][:4]], ViewsError, r"same, non-zero number of samples, got \[6, 4\]"),
        (lambda v: [v[0][:0], v[1][:0]], ViewsError, r"got \[0, 0\]"),
        (
            lambda v: [v[0], v[1][:, :, :4]],
            ViewsError,
            r"view 1 has per-sample shape \(1, 4, 8\), the model expects \(1, 8, 8\)",
        ),
        (lambda v: v[0], TypeError, r"views must be a list of 2 arrays .* got a Tensor"),
        (lambda v: [v[0], v[1].tolist()], TypeError, r"view 1 is a list; pass a torch tensor"),
        (lambda v: [v[0], v[1].numpy().astype(str)], TypeError, r"view 1 has dtype <U"),
        (
            lambda v: [v[0], v[1].double() * 1e300],
            ViewsError,
            r"view 1 holds values as large as .* beyond the float32 range",
        ),
    ],
    ids=[
        "too few views", "different sample counts", "no samples", "wrong shape",
        "one tensor", "a list", "strings", "beyond float32",
    ],
)  # fmt: skip
def test_api_refuses_views_that_do_not_fit(trained, make, error, message):
    views, _ = make_views(6)
    with pytest.raises(error, match=message):
        trained.encode(make(views))


def test_api_refuses_a_bad_availability_mask(trained):
    views, _ = make_views(6)
    with pytest.raises(ViewsError, match=r"available must be N×V = 6×2"):
        trained.encode(views, available=np.ones((6, 3), bool))
    with pytest.raises(ViewsError, match=r"booleans or 0/1"):
        trained.encode(views, available=np.full((6, 2), 0.5))


@pytest.mark.parametrize(
    "section, key, other",
    [
        ("eval", "umap_knn", "nndescent"),
        ("run", "recompute_activations", True),
        ("run", "plateau_min_fraction", 0.5),
    ],
)
def test_a_state_from_before_a_key_existed_is_not_refused_for_it_but_a_changed_one_is(
    section, key, other
):
    from mrdd.config import RunConfig

    config, shapes = RunConfig(), [(1, 8, 8), (1, 8, 8)]
    old = config.to_dict()
    del old[section][key]  # written before the key existed
    check_compatible({"kind": "state", "config": old, "view_shapes": shapes}, config, shapes, "f")
    changed = RunConfig.from_dict({section: {key: other}}).to_dict()
    state = {"kind": "state", "config": changed, "view_shapes": shapes}
    with pytest.raises(CheckpointError, match=f"{section}.{key}"):
        check_compatible(state, config, shapes, "f")
