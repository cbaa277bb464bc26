"""Both stages end to end on non-default data: 6 vector views, mixed npz views."""

import json

import numpy as np
import torch
from fixtures.data_formats import MFEAT_DIMS, mfeat_arrays, write_mfeat
from helpers import TINY_MODEL

import mrdd
from mrdd.config import RunConfig
from mrdd.train import run

TINY = {**TINY_MODEL, "backbone": {**TINY_MODEL["backbone"], "mlp_hidden": [16, 8]}}


def _config(dataset: dict, batch_size: int = 32, figures: bool = True) -> RunConfig:
    return RunConfig.from_dict(
        {
            "dataset": dataset,
            "model": TINY,
            "stage1": {"epochs": 1, "batch_size": batch_size, "mask_patch_size": 2},
            "stage2": {"epochs": 1, "batch_size": batch_size},
            # the cheap parts of the evaluation (tests/test_evaluation.py runs the rest)
            "eval": {
                "n_seeds": 1,
                "num_figure_samples": 3,
                "embedding_samples": 60,  # t-SNE / UMAP figures of 1,000 points take ~40 s
                "clustering": ["kmeans"],
                "classifiers": ["linear"],
                "regressors": ["ridge"],
                "figures": figures,
            },
            "run": {"device": "cpu"},
        }
    )


def test_six_vector_views_train_through_both_stages(tmp_path):
    write_mfeat(tmp_path / "mfeat")
    # no figures: six views' panels cost more than the rest (the mixed-views test below and
    # tests/test_evaluation.py draw vector views)
    cfg = _config({"name": "multiple_features", "root": str(tmp_path / "mfeat")}, 200, False)
    metrics = run(cfg, tmp_path / "run")
    reps = {row["representation"] for row in metrics["scores"] if row["task"] == "clustering"}
    assert reps == {"C", *(f"S_{v}" for v in range(6)), "C+S_best", "C+S_all", "raw_best"}
    assert metrics["splits"]["test"] == 400
    trained = torch.load(tmp_path / "run" / "mrdd.pt", weights_only=True)
    assert [s for s in trained["view_shapes"]] == [[d] for d in MFEAT_DIMS.values()]
    assert metrics["figures"] == []


def test_npz_with_mixed_image_and_vector_views_trains(tmp_path):
    # 200 samples: the val split carved from train must hold >= 10 samples to be clustered.
    views, labels = mfeat_arrays(200)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(200, 8, 8), dtype=np.uint8)
    path = tmp_path / "mine.npz"
    np.savez(path, view_0=images, view_1=views[0], view_2=views[5], labels=labels)
    cfg = _config({"name": "npz", "path": str(path), "best_view": 1}, 16)
    metrics = run(cfg, tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["best_view"] == 1
    assert {row["runs"] for row in metrics["scores"] if row["representation"] == "C+S_all"} == {1}
    trained = mrdd.load(tmp_path / "run")
    assert trained.view_shapes == [(1, 8, 8), (76,), (6,)]
    batch = [torch.rand(5, 1, 8, 8), torch.randn(5, 76), torch.randn(5, 6)]
    reps = trained.representations(batch)
    assert reps["C+S_best"].shape == (5, TINY["c_dim"] + TINY["v_dim"])
    assert reps["C+S_all"].shape == (5, TINY["c_dim"] + 3 * TINY["v_dim"])
