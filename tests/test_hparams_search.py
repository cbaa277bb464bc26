"""Hyperparameter search with Hydra's Optuna sweeper (the `search` extra): the study
maximises the validation score each run returns, and never sees a test score."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import tiny_script_overrides, write_image_npz

from mrdd.config import ConfigError, RunConfig
from mrdd.eval.tables import find_score, score_row

ROOT = Path(__file__).resolve().parents[1]


def test_find_score_reads_one_row_by_split_representation_and_metric():
    rows = [
        score_row("clustering", "C", "acc", "val", [0.5, 0.7]),
        score_row("clustering", "C+S_best", "acc", "val", [0.8]),
        score_row("clustering", "C+S_best", "acc", "test", [0.1]),
    ]
    assert find_score(rows, "val/C+S_best/acc") == 0.8
    assert find_score(rows, "val/C/acc") == pytest.approx(0.6)
    with pytest.raises(ValueError, match="names 0 scores"):
        find_score(rows, "val/S_0/acc")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"optimize_metric": "test/C/acc"}, "would choose settings on the test split"),
        ({"optimize_metric": "val/C/acc", "eval": {"also_cluster": []}}, "add val to eval.also"),
        (
            {
                "optimize_metric": "val/C/acc",
                "dataset": {"name": "edge_mnist_5k", "val_fraction": 0},
            },
            "dataset.val_fraction=0 gives none",
        ),
        ({"optimize_metric": "val-C-acc", "eval": {"split": "val"}}, "<split>/<representation>"),
    ],
)
def test_optimize_metric_must_name_a_validation_score_the_run_computes(overrides, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_dict(overrides)


@pytest.mark.slow
def test_two_optuna_trials_return_their_validation_scores(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="needs the search extra")
    write_image_npz(tmp_path / "data.npz", n=80)
    sweep = tmp_path / "sweep"
    args = [
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=2",
        f"hydra.sweep.dir={sweep}",
        *tiny_script_overrides(tmp_path / "data.npz"),
        "dataset.val_fraction=0.25",
        "eval.classifiers=[]",
        "eval.regressors=[]",
    ]
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), *args],
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    scores = []
    for job in ("0", "1"):
        metrics = json.loads((sweep / job / "metrics.json").read_text())
        assert {row["split"] for row in metrics["scores"]} == {"val"}  # nothing on test
        scores.append(find_score(metrics["scores"], "val/C+S_best/acc"))
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(max(scores))
