"""Checkpoint and resume: a stopped run, resumed, ends exactly where an uninterrupted run
ends (weights, metrics, history), in either stage; RNG states survive a round trip."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import run_train_script, tiny_run_dict, write_image_npz

from mrdd.config import RunConfig
from mrdd.train import ConsistencyStage, DisentangleStage, atomic_torch_save, resume, run
from mrdd.train.state import rng_state, set_rng_state

ROOT = Path(__file__).resolve().parents[1]
TIMINGS = {"seconds", "samples_per_s", "elapsed_s"}
CPU = torch.device("cpu")

#: Runs scripts/train.py in-process, SIGKILLing itself at stage-1 step ``argv[1]``: a kill
#: with no cleanup at a known point, so the test needs no race against a timer.
KILL_AT_STEP = """
import os, runpy, signal, sys
from mrdd.train.stages import ConsistencyStage
kill_at, steps = int(sys.argv.pop(1)), 0
original = ConsistencyStage.step
def step_or_die(self, *batch):
    global steps
    steps += 1
    if steps == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, *batch)
ConsistencyStage.step = step_or_die
sys.argv[0] = "scripts/train.py"
sys.path.insert(0, "scripts")  # as `python scripts/train.py` has it
runpy.run_path("scripts/train.py", run_name="__main__")
"""


def _losses(history: dict) -> dict:
    return {
        stage: [{k: v for k, v in rec.items() if k not in TIMINGS} for rec in records]
        for stage, records in history.items()
    }


def assert_same_run(a: Path, b: Path) -> None:
    """Same final weights (bit for bit), clustering metrics and per-epoch loss terms."""
    state_a = torch.load(a / "mrdd.pt", weights_only=True)["state_dict"]
    state_b = torch.load(b / "mrdd.pt", weights_only=True)["state_dict"]
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key
    metrics_a, metrics_b = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    clustering_a, clustering_b = (
        [row for row in m["scores"] if row["task"] == "clustering"] for m in (metrics_a, metrics_b)
    )
    assert clustering_a and clustering_a == clustering_b
    history_a, history_b = (json.loads((d / "history.json").read_text()) for d in (a, b))
    assert _losses(history_a) == _losses(history_b)


def _overrides(npz: Path) -> list[str]:
    """Hydra overrides like :func:`tiny_run_dict` with 3 epochs, deterministic, no figures."""
    return [
        "dataset=npz",
        f"dataset.path={npz}",
        "model.c_dim=4",
        "model.v_dim=3",
        "model.backbone.base_width=4",
        "model.backbone.channel_mults=[1,2]",
        "model.backbone.num_blocks=1",
        "model.backbone.latent_channels=2",
        "model.club_hidden=16",
        "stage1.epochs=3",
        "stage1.batch_size=8",
        "stage2.epochs=3",  # as stage 1, not the default budget
        "stage2.batch_size=8",
        "eval.n_seeds=2",
        "eval.clustering=[kmeans]",  # as tiny_run_dict; a process's first UMAP compiles ~15 s
        "eval.figures=false",  # (the figures draw a UMAP too)
        "run.device=cpu",
        "run.deterministic=true",
    ]


def test_sigkilled_run_resumes_to_exactly_the_uninterrupted_result(tmp_path):
    npz = tmp_path / "data.npz"
    write_image_npz(npz)  # 34 training samples (4 more are val): 4 steps per epoch
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    script = [sys.executable, "scripts/train.py"]
    args = _overrides(npz)
    reference = subprocess.Popen(
        [*script, *args, f"hydra.run.dir={tmp_path / 'reference'}"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    killed = tmp_path / "killed"
    victim = subprocess.run(
        [sys.executable, "-c", KILL_AT_STEP, "6", *args, f"hydra.run.dir={killed}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert victim.returncode == -signal.SIGKILL, victim.stderr
    state = torch.load(killed / "consistency_state.pt", weights_only=True)
    assert (state["epoch"], state["step"]) == (1, 4)  # killed in epoch 2, after the first save
    assert not (killed / "consistency.pt").exists()

    resumed = subprocess.run(
        [*script, f"resume={killed}"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stderr
    assert reference.wait() == 0, reference.stderr.read()
    assert_same_run(tmp_path / "reference", killed)
    info = json.loads((killed / "run_info.json").read_text())
    assert len(info["resumed"]) == 1


class Crash(Exception):
    """Stands in for the process dying mid-epoch."""


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, RunConfig]:
    """An uninterrupted run of 3 epochs per stage: its directory and its config."""
    tmp = tmp_path_factory.mktemp("reference")
    write_image_npz(tmp / "data.npz")  # 34 training samples (4 more are val): 4 steps per epoch
    cfg = RunConfig.from_dict(
        tiny_run_dict(tmp / "data.npz", stage1={"epochs": 3}, stage2={"epochs": 3})
    )
    run(cfg, tmp / "run")
    return tmp / "run", cfg


@pytest.mark.parametrize("crashing", [ConsistencyStage, DisentangleStage])
def test_crash_mid_epoch_then_resume_with_the_script(tmp_path, monkeypatch, reference, crashing):
    """A run stopped in epoch 2 of either stage, resumed with ``scripts/train.py
    resume=<run_dir>``, ends as the uninterrupted run (in-process: no SIGKILL)."""
    reference_dir, cfg = reference
    steps = iter(range(1, 100))
    original = crashing.step

    def step_or_crash(self, *batch):
        if next(steps) == 6:
            raise Crash
        return original(self, *batch)

    monkeypatch.setattr(crashing, "step", step_or_crash)
    crashed = tmp_path / "crashed"
    with pytest.raises(Crash):
        run(cfg, crashed)
    monkeypatch.undo()
    state = torch.load(crashed / f"{crashing.name}_state.pt", weights_only=True)
    assert (state["epoch"], state["step"]) == (1, 4)
    stage1_saved = (crashed / "consistency_state.pt").stat().st_mtime_ns

    run_train_script(monkeypatch, f"resume={crashed}")
    if crashing is DisentangleStage:  # a finished stage 1 is not trained (nor saved) again
        assert (crashed / "consistency_state.pt").stat().st_mtime_ns == stage1_saved
    assert_same_run(reference_dir, crashed)
    info = json.loads((crashed / "run_info.json").read_text())
    assert info["seed"] == cfg.run.seed and len(info["resumed"]) == 1
    assert {"git_commit", "torch", "cuda", "device"} <= info["resumed"][0]["environment"].keys()


def test_rng_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    atomic_torch_save(rng_state(CPU), tmp_path / "rng.pt")
    expected = (random.random(), np.random.rand(3).tolist(), torch.rand(3))
    random.seed(2)
    np.random.seed(2)
    torch.manual_seed(2)
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True), CPU)
    drawn = (random.random(), np.random.rand(3).tolist(), torch.rand(3))
    assert drawn[:2] == expected[:2]
    assert torch.equal(drawn[2], expected[2])


def test_resume_needs_a_run_directory(tmp_path):
    from mrdd.train import CheckpointError

    with pytest.raises(CheckpointError, match="no config.json.*not a training run"):
        resume(tmp_path)
