"""Shared fixtures: tiny configs and tiny multi-view data for fast unit tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from helpers import TINY_MODEL, make_views, tiny_run_dict, write_image_npz

from mrdd.config import RunConfig
from mrdd.data import DatasetSplits, MultiViewData

# The scripts' own modules (config_schema) are importable, as `python scripts/<x>.py` has them.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))


@pytest.fixture
def tiny_config() -> RunConfig:
    return RunConfig.from_dict(
        {
            "model": TINY_MODEL,
            "stage1": {"epochs": 1, "batch_size": 8, "lr": 1e-3},
            "stage2": {"epochs": 1, "batch_size": 8, "lr": 1e-3},
            # fp32: the exactness checks compare fp32 numbers on every CPU (precision=auto
            # would be bf16 on one with native bf16); bf16 has its own tests
            "run": {"device": "cpu", "log_every": 1, "precision": "fp32"},
            # the paper's KMeans only: tests/test_evaluation.py runs the umap method
            "eval": {"n_seeds": 2, "num_figure_samples": 4, "clustering": ["kmeans"]},
        }
    )


@pytest.fixture
def tiny_splits() -> DatasetSplits:
    views, labels = make_views(24)
    data = MultiViewData(views, labels, "tiny")
    return DatasetSplits(
        train=data.subset(torch.arange(16), "tiny/train"),
        test=data.subset(torch.arange(16, 24), "tiny/test"),
        num_classes=2,
        name="tiny",
    )


@pytest.fixture(scope="module")
def stage1_run(tmp_path_factory) -> Path:
    """A finished stage-1-only run on ``data.npz`` next to it: config.json, consistency.pt,
    consistency_state.pt."""
    from mrdd.train import run

    tmp = tmp_path_factory.mktemp("stage1")
    write_image_npz(tmp / "data.npz")
    cfg = tiny_run_dict(tmp / "data.npz", stage="consistency", stage1={"epochs": 1})
    run(RunConfig.from_dict(cfg), tmp / "run")
    return tmp / "run"
