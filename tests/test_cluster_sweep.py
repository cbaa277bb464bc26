"""A Hydra multirun through the submitit launcher (the `cluster` extra), then collect.py.

The Slurm launcher (``hydra/launcher=slurm``) is the same plugin with another executor; the
local one (``hydra/launcher=local``) runs every job as its own process on this machine.
"""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import tiny_script_overrides, write_image_npz

pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="needs the cluster extra")

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_two_job_sweep_through_the_submitit_local_launcher_is_collected(tmp_path):
    write_image_npz(tmp_path / "data.npz")
    sweep = tmp_path / "sweep"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    train = [sys.executable, str(ROOT / "scripts" / "train.py"), "-m", "hydra/launcher=local"]
    args = [
        *tiny_script_overrides(tmp_path / "data.npz"),
        "eval.classifiers=[linear]",
        "eval.regressors=[ridge]",
        "stage2.club_weight=0,1",
    ]
    result = subprocess.run(
        [*train, *args, f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (sweep / ".submitit").is_dir()  # the jobs went through submitit
    for job in ("0", "1"):
        assert (sweep / job / "metrics.json").is_file(), job

    collect = [sys.executable, str(ROOT / "scripts" / "collect.py"), str(sweep)]
    result = subprocess.run(collect, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    with (sweep / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert sorted(row["stage2.club_weight"] for row in rows) == ["0.0", "1.0"]
    assert [row["n_runs"] for row in rows] == ["1", "1"]
    assert "stage2.club_weight" in result.stdout
