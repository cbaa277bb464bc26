"""scripts/train.py end to end through real Hydra composition, on tiny settings."""

import json
from pathlib import Path

import pytest
import torch
from helpers import TINY_MODEL_OVERRIDES, ScriptResult, train_script_result

import mrdd

ROOT = Path(__file__).resolve().parents[1]
TINY_OVERRIDES = [
    "stage1.epochs=1",
    "stage1.batch_size=500",
    "stage2.epochs=1",  # the defaults give stage 2 its own (long) budget
    "stage2.batch_size=500",
    *TINY_MODEL_OVERRIDES,
    "eval.n_seeds=2",
    "eval.classifiers=[linear]",  # the cheap parts of the evaluation (tests/test_evaluation.py
    "eval.regressors=[ridge]",  # covers the rest on tiny data)
    "eval.embedding_samples=200",
    # UMAP on the 3,600 real training digits costs minutes; tests/test_evaluation.py and
    # tests/test_clustering_methods.py cover the umap method on tiny data
    "eval.clustering=[kmeans]",
    "run.device=cpu",
]


def _train(tmp_path: Path, *overrides: str, run_dir: str = "run") -> ScriptResult:
    args = [*TINY_OVERRIDES, *overrides, f"hydra.run.dir={tmp_path / run_dir}"]
    return train_script_result(*args, cwd=tmp_path)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    tmp_path = tmp_path_factory.mktemp("train")
    result = _train(tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp_path / "run"


def test_default_run_writes_every_file(trained_run):
    for name in [
        "config.json",
        "consistency.pt",
        "mrdd.pt",
        "metrics.json",
        "history.json",
        "reconstructions.png",
        "train.log",
        ".hydra/config.yaml",
    ]:
        assert (trained_run / name).is_file(), name
    metrics = json.loads((trained_run / "metrics.json").read_text())
    scores = metrics["scores"]
    acc = [row for row in scores if (row["task"], row["metric"]) == ("clustering", "acc")]
    assert {(row["split"], row["runs"]) for row in acc} == {("test", 2), ("val", 2)}
    assert (metrics["splits"]["test"], metrics["splits"]["val"]) == (1000, 400)
    for split in ("test", "val"):
        names = [row["representation"] for row in acc if row["split"] == split]
        assert names == ["C", "S_0", "S_1", "C+S_best", "C+S_all", "raw_best"]
    for row in acc:
        assert 0.0 <= row["mean"] <= 1.0 and len(row["values"]) == 2
    assert "stage 1 (consistency)" in (trained_run / "train.log").read_text()


def test_notebook_api_loads_the_run_and_encodes_views(trained_run):
    trained = mrdd.load(trained_run)
    views = [torch.rand(5, 1, 32, 32), torch.rand(5, 1, 32, 32)]
    reps = trained.representations(views)
    assert reps["C"].shape == (5, 4) and reps["S_1"].shape == (5, 3)
    assert reps["C+S_best"].shape == (5, 7) and reps["C+S_all"].shape == (5, 10)
    # rebuilt from the saved config alone, without Hydra
    rebuilt = mrdd.build_model(trained.config, trained.view_shapes)
    rebuilt.load_state_dict(trained.model.state_dict())
    rebuilt.eval()
    torch.testing.assert_close(rebuilt.encode(views).c, trained.encode(views).c)
    with pytest.raises(ValueError, match="per-sample shape"):
        trained.encode([torch.rand(5, 1, 28, 28), torch.rand(5, 1, 28, 28)])


def test_stage_two_alone_from_a_stage_one_checkpoint(trained_run, tmp_path):
    ckpt = trained_run / "consistency.pt"
    # no figures: the fixture's run draws them; this test is about the stage-1 hand-off
    result = _train(tmp_path, "stage=disentangle", f"consistency_ckpt={ckpt}", "eval.figures=false")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "mrdd.pt").is_file()
    assert not (tmp_path / "run" / "consistency.pt").exists()


def test_stage_two_refuses_a_checkpoint_with_other_settings(trained_run, tmp_path):
    ckpt = trained_run / "consistency.pt"
    result = _train(tmp_path, "stage=disentangle", f"consistency_ckpt={ckpt}", "model.c_dim=6")
    assert result.returncode == 2
    assert "model.c_dim (checkpoint 4, this run 6)" in result.stderr


def test_typo_in_an_override_fails_before_training(tmp_path):
    result = _train(tmp_path, "stage1.epoch=3")
    assert result.returncode != 0
    assert "epoch" in result.stderr
    assert not (tmp_path / "run" / "consistency.pt").exists()
