"""Nothing overwritten, nothing lost (issue 23): encode's out=, a sweep with a bad job, a
refused resume, two processes in one run directory, a run directory that never trained,
and a full disk, each with one line that names the file and the fix."""

from __future__ import annotations

import json
import os
import runpy
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import tiny_run_dict, tiny_script_overrides, train_script_result, write_image_npz

from mrdd.config import RunConfig
from mrdd.data import DataError
from mrdd.train import CheckpointError, resume, run
from mrdd.train.rundir import (
    LOCK_FILE,
    RunDirectoryError,
    describe_write_failure,
    os_error_behind,
    run_dir_lock,
)

ROOT = Path(__file__).resolve().parents[1]
QUICK = {
    "stage1": {"epochs": 1},
    "stage2": {"epochs": 1},
    "run": {"eval_every": 0},
    "eval": {"classifiers": [], "regressors": [], "figures": False},
}


def _quick_run(npz: Path, out: Path, **sections) -> dict:
    return run(RunConfig.from_dict(tiny_run_dict(npz, **QUICK, **sections)), out)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("finished")
    write_image_npz(tmp / "data.npz")
    _quick_run(tmp / "data.npz", tmp / "run", stage="consistency")
    return tmp / "run"


@pytest.fixture(scope="module")
def encode_main():
    return runpy.run_path(str(ROOT / "scripts" / "encode.py"))["main"]


def _train_script_process(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``scripts/train.py`` in a process of its own: for a lock held by *another* pid."""
    command = [sys.executable, str(ROOT / "scripts" / "train.py"), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, timeout=600)


def _stage1_overrides(npz: Path) -> list[str]:
    """:func:`tiny_script_overrides` for stage=consistency: without the stage-2 settings,
    which that stage refuses when named."""
    stage2_only = ("stage2.", "model.club_hidden=")  # refused by stage=consistency
    kept = [o for o in tiny_script_overrides(npz) if not o.startswith(stage2_only)]
    return [*kept, "stage=consistency", "eval.classifiers=[]", "eval.regressors=[]"]


def _last_line(stderr: str) -> str:
    return stderr.strip().splitlines()[-1]


# --- scripts/encode.py out= --------------------------------------------------------------


def test_encode_refuses_an_existing_out_before_loading_anything(tmp_path, encode_main, capsys):
    out = tmp_path / "codes.npz"
    out.write_bytes(b"the user's earlier codes")
    # the run directory does not exist: the out= check comes first, before any work
    assert encode_main([f"run_dir={tmp_path / 'no_run'}", f"out={out}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: out={out} exists; pass overwrite=true to replace it, or name a new file."
    assert out.read_bytes() == b"the user's earlier codes"


def test_encode_overwrites_only_when_asked(finished, tmp_path, encode_main):
    out = tmp_path / "codes.npz"
    out.write_bytes(b"old")
    assert encode_main([f"run_dir={finished}", f"out={out}", "overwrite=true"]) == 0
    with np.load(out) as codes:
        assert codes["C"].shape == (48, 4) and len(codes["labels"]) == 48
    assert [p.name for p in tmp_path.iterdir()] == ["codes.npz"]  # no temporary left


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("folder.npz", "is a directory; name a .npz file"),
        ("a_file/codes.npz", "a_file is a file, not a folder"),
        ("a_file/deeper/codes.npz", "a_file is a file, not a folder"),
    ],
)
def test_encode_refuses_an_out_it_cannot_write_before_encoding(
    tmp_path, encode_main, capsys, out, message
):
    (tmp_path / "folder.npz").mkdir()
    (tmp_path / "a_file").write_text("x")
    assert encode_main([f"run_dir={tmp_path / 'no_run'}", f"out={tmp_path / out}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and message in err


def test_encode_refuses_an_overwrite_that_is_not_a_boolean(tmp_path, encode_main, capsys):
    assert encode_main(["run_dir=r", f"out={tmp_path / 'c.npz'}", "overwrite=yes"]) == 2
    assert "overwrite= must be true or false, got 'yes'" in capsys.readouterr().err


# --- a full disk ---------------------------------------------------------------------


@pytest.mark.parametrize("size", [10, 3_000_000])
def test_a_full_disk_is_found_behind_torch_save_and_named(tmp_path, size):
    """/dev/full answers every write with ENOSPC, as a full disk does; for a large tensor
    torch's zip writer fails first ('unexpected pos') and Errno 28 is only in the chain."""
    with pytest.raises((OSError, RuntimeError)) as raised, open("/dev/full", "wb") as f:
        torch.save({"w": torch.zeros(size)}, f)
    cause = os_error_behind(raised.value)
    assert cause is not None and cause.errno == 28
    line = describe_write_failure(cause, tmp_path / "run")
    assert line.startswith(f"the disk holding {tmp_path / 'run'} is full (no space left on device")
    assert "MiB free now" in line


def test_another_write_failure_names_the_file_and_the_reason(tmp_path):
    err = PermissionError(13, "Permission denied", str(tmp_path / "mrdd.pt"))
    line = describe_write_failure(err, tmp_path)
    assert line == f"cannot write {tmp_path / 'mrdd.pt'}: Permission denied"
    assert os_error_behind(RuntimeError("no file involved")) is None


# --- the run directory: a refused resume, a lock, a directory that never trained ----------


def test_a_refused_resume_leaves_the_runs_record_as_it_was(finished, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in ("config.json", "run_info.json", "consistency.pt", "consistency_state.pt"):
        (run_dir / name).write_bytes((finished / name).read_bytes())
    config = json.loads((run_dir / "config.json").read_text())
    config["stage1"]["lr"] = 0.5  # edited after the run: its saved state no longer fits
    (run_dir / "config.json").write_text(json.dumps(config))
    before = (run_dir / "run_info.json").read_bytes()
    assert json.loads(before)["status"] == "finished"
    with pytest.raises(CheckpointError, match=r"stage1\.lr \(checkpoint 0\.002, this run 0\.5\)"):
        resume(run_dir)
    assert (run_dir / "run_info.json").read_bytes() == before
    assert "resume refused, the run's record left as it was" in (run_dir / "train.log").read_text()


def test_a_second_process_is_refused_naming_the_holder(finished, tmp_path):
    holder = f"process {os.getpid()} on {socket.gethostname()}"
    before = (finished / "run_info.json").read_bytes()
    with run_dir_lock(finished):
        assert (finished / LOCK_FILE).read_text().startswith(holder)
        result = _train_script_process(f"resume={finished}", cwd=tmp_path)
    assert result.returncode == 2
    line = _last_line(result.stderr)
    assert line.startswith(f"error: {finished} is in use by {holder}")
    assert "Wait until it ends" in line
    assert (finished / "run_info.json").read_bytes() == before
    with pytest.raises(RunDirectoryError, match="is in use by"), run_dir_lock(tmp_path):
        run_dir_lock(tmp_path).__enter__()


def test_the_lock_of_a_killed_process_is_no_lock(tmp_path):
    code = (
        "import os, sys; from pathlib import Path; from mrdd.train.rundir import run_dir_lock\n"
        "with run_dir_lock(Path(sys.argv[1])): os.kill(os.getpid(), 9)"
    )
    killed = subprocess.run([sys.executable, "-c", code, str(tmp_path)], timeout=600)
    assert killed.returncode == -9
    assert (tmp_path / LOCK_FILE).read_text().startswith("process ")  # what it left
    with run_dir_lock(tmp_path):
        assert (tmp_path / LOCK_FILE).read_text().startswith(f"process {os.getpid()} ")


def test_a_directory_whose_run_never_trained_is_reused_by_the_fixed_run(tmp_path):
    out = tmp_path / "run"
    npz = tmp_path / "data.npz"
    with pytest.raises(DataError, match="not found"):
        _quick_run(npz, out, stage="consistency")
    assert json.loads((out / "run_info.json").read_text())["status"] == "failed"
    write_image_npz(npz)  # the fix
    _quick_run(npz, out, stage="consistency")
    info = json.loads((out / "run_info.json").read_text())
    assert info["status"] == "finished" and (out / "consistency.pt").is_file()


def test_the_script_reuses_a_directory_whose_run_failed_on_bad_data(tmp_path):
    npz = tmp_path / "data.npz"
    npz.write_text("not an npz file")
    args = [*_stage1_overrides(npz), f"hydra.run.dir={tmp_path / 'run'}"]
    first = train_script_result(*args, cwd=tmp_path)
    assert first.returncode == 2 and str(npz) in _last_line(first.stderr)
    write_image_npz(npz)  # the fix; the same command again
    second = train_script_result(*args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    info = json.loads((tmp_path / "run" / "run_info.json").read_text())
    assert info["status"] == "finished"


# --- a sweep with a bad job ------------------------------------------------------------


def test_a_sweep_runs_its_good_jobs_and_ends_naming_the_bad_one(tmp_path):
    npz = tmp_path / "data.npz"
    write_image_npz(npz)
    result = train_script_result(
        "-m",
        *_stage1_overrides(npz),
        "run.eval_every=0",
        "stage1.mask_ratio=0.5,1.0,0.3",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    summary = result.stderr[result.stderr.index("error: 1 sweep job(s) refused") :]
    assert summary.splitlines()[1].strip().startswith("job 1 (stage1.mask_ratio=1.0): ")
    assert "stage1.mask_ratio must be in [0, 1)" in summary
    done = [json.loads((tmp_path / "sweep" / n / "run_info.json").read_text()) for n in "02"]
    assert [d["config"]["stage1"]["mask_ratio"] for d in done] == [0.5, 0.3]
    assert all(d["status"] == "finished" for d in done)


# --- scripts/evaluate.py paths ---------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("a_file", "out_dir={out} is a file; name a folder"),
        ("a_file/val", "out_dir={out} is under {tmp}/a_file, a file; name a folder"),
    ],
)
def test_evaluate_refuses_an_out_dir_that_cannot_be_a_folder(
    finished, tmp_path, capsys, where, message
):
    (tmp_path / "a_file").write_text("x")
    main = runpy.run_path(str(ROOT / "scripts" / "evaluate.py"))["main"]
    out = tmp_path / where
    assert main([f"run_dir={finished}", f"out_dir={out}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: " + message.format(out=out, tmp=tmp_path) + " for the results."
    assert (tmp_path / "a_file").read_text() == "x"


def test_evaluate_names_a_run_dir_that_does_not_exist(tmp_path, capsys):
    main = runpy.run_path(str(ROOT / "scripts" / "evaluate.py"))["main"]
    assert main([f"run_dir={tmp_path / 'typo'}"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: run_dir={tmp_path / 'typo'} does not exist; pass a training run's directory."
    )
