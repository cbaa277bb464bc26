"""A run never overwrites another run's directory, and records how it ended."""

import hashlib
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import tiny_run_dict, train_script_result, write_image_npz

from mrdd.config import RunConfig
from mrdd.data import DataError
from mrdd.train import run
from mrdd.train.rundir import RunDirectoryError


def _tiny_cfg(npz: Path, **runtime) -> RunConfig:
    """A one-epoch run of each stage; ``runtime``: settings of its ``run`` section."""
    return RunConfig.from_dict(
        tiny_run_dict(
            npz,
            stage1={"epochs": 1},
            stage2={"epochs": 1},
            run={"eval_every": 0, **runtime},
            eval={"classifiers": [], "regressors": [], "figures": False},
        )
    )


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def finished_run(tmp_path) -> tuple[Path, Path]:
    npz = tmp_path / "data.npz"
    write_image_npz(npz)
    out = tmp_path / "run"
    run(_tiny_cfg(npz), out)
    return npz, out


def test_a_finished_run_records_its_status(finished_run):
    _, out = finished_run
    info = json.loads((out / "run_info.json").read_text())
    assert info["status"] == "finished" and info["cause"] is None and info["ended"]


def test_a_new_run_into_a_run_directory_is_refused_and_changes_nothing(finished_run):
    npz, out = finished_run
    before = _digest(out)
    with pytest.raises(RunDirectoryError, match=r"already holds a run .*resume="):
        run(_tiny_cfg(npz, seed=1), out)
    assert _digest(out) == before


def test_a_half_done_run_directory_is_refused_too(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "consistency_state.pt").write_bytes(b"state of an interrupted stage 1")
    with pytest.raises(RunDirectoryError, match="consistency_state.pt"):
        run(_tiny_cfg(tmp_path / "unused.npz"), out)
    assert (out / "consistency_state.pt").read_bytes() == b"state of an interrupted stage 1"


def test_a_run_directory_under_a_file_is_refused_before_anything_is_written(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(RunDirectoryError, match="is a file, not a folder"):
        run(_tiny_cfg(tmp_path / "unused.npz"), blocker / "run")


def test_a_failed_run_says_why_in_its_own_directory(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(DataError):
        run(_tiny_cfg(tmp_path / "missing.npz"), out)
    info = json.loads((out / "run_info.json").read_text())
    assert info["status"] == "failed" and "missing.npz" in info["cause"]
    log = (out / "train.log").read_text()
    assert "run failed: DataError" in log and "missing.npz" in log


def test_an_interrupted_run_is_recorded_as_interrupted(tmp_path, monkeypatch):
    npz = tmp_path / "data.npz"
    write_image_npz(npz)

    def interrupt(*_args, **_kwargs):
        raise KeyboardInterrupt

    # the module, not the function that mrdd.train exports under the same name
    monkeypatch.setattr(importlib.import_module("mrdd.train.run"), "fit", interrupt)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run(_tiny_cfg(npz), out)
    info = json.loads((out / "run_info.json").read_text())
    assert info["status"] == "interrupted" and info["cause"] == "KeyboardInterrupt"
    assert "run interrupted" in (out / "train.log").read_text()


SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train.py"


def _train_script_process(*args: str, cwd: Path) -> subprocess.Popen:
    """``scripts/train.py`` in a process of its own: two of them start at once below."""
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def test_the_script_refuses_a_run_directory_before_hydra_writes_into_it(finished_run):
    _, out = finished_run
    (out / ".hydra").mkdir(exist_ok=True)
    (out / ".hydra" / "config.yaml").write_text("the old run's composition record\n")
    before = _digest(out)
    result = train_script_result(f"hydra.run.dir={out}", "run.device=cpu", cwd=out.parent)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "resume=" in lines[0]
    assert _digest(out) == before  # .hydra/ and train.log included


def test_the_script_names_a_run_directory_it_cannot_create(tmp_path):
    (tmp_path / "a_file").write_text("x")
    result = train_script_result(f"hydra.run.dir={tmp_path / 'a_file' / 'run'}", cwd=tmp_path)
    stderr = result.stderr.strip()
    assert result.returncode == 2
    assert stderr.splitlines() == [stderr] and "is a file" in stderr


def test_runs_started_in_the_same_second_get_their_own_directories(tmp_path):
    """Two processes at once, on data that does not exist: each fails in its own folder."""
    args = ("dataset=npz", f"dataset.path={tmp_path / 'missing.npz'}", "run.device=cpu")
    procs = [_train_script_process(*args, cwd=tmp_path) for _ in range(2)]
    for proc in procs:
        proc.communicate(timeout=120)
        assert proc.returncode == 2
    run_dirs = sorted(p.parent for p in (tmp_path / "outputs").rglob("run_info.json"))
    assert len(run_dirs) == 2 and run_dirs[0] != run_dirs[1]
    for run_dir in run_dirs:
        info = json.loads((run_dir / "run_info.json").read_text())
        assert info["status"] == "failed" and "missing.npz" in info["cause"]
