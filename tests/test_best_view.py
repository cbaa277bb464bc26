"""Issue 21 part 3: C‖S_best's view chosen on val when unset, and the code to report."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest
import torch
from helpers import make_views, tiny_run_dict, write_image_npz

import mrdd
from mrdd.config import RunConfig
from mrdd.data import DatasetSplits, MultiViewData
from mrdd.eval.best_view import (
    BY_RAW_VIEWS,
    BY_SPECIFIC_CODES,
    NO_VAL_SPLIT,
    SET_BY_USER,
    best_on_val,
    settle_best_view,
)
from mrdd.eval.metrics import evaluate_clustering
from mrdd.eval.representations import extract_codes
from mrdd.eval.tables import metrics_markdown
from mrdd.models import MRDD, ConsistencyModel

CPU = torch.device("cpu")


@pytest.fixture
def splits_with_val(tiny_splits) -> DatasetSplits:
    views, labels = make_views(12, seed=1)
    return dataclasses.replace(tiny_splits, val=MultiViewData(views, labels, "tiny/val"))


def _config(tiny_config: RunConfig, best_view: int | None) -> RunConfig:
    return tiny_config.with_overrides({"dataset": {"best_view": best_view}})


def test_a_set_view_is_kept(tiny_config, splits_with_val):
    model = MRDD(splits_with_val.view_shapes, tiny_config.model)
    splits, record = settle_best_view(model, splits_with_val, _config(tiny_config, 1), CPU)
    assert splits.best_view == 1 and record == {"view": 1, "by": SET_BY_USER}


def test_an_unset_view_is_the_one_whose_c_and_s_v_cluster_best_on_val(tiny_config, splits_with_val):
    torch.manual_seed(0)
    model = MRDD(splits_with_val.view_shapes, tiny_config.model).eval()
    cfg = _config(tiny_config, None)
    splits, record = settle_best_view(model, splits_with_val, cfg, CPU)
    codes = extract_codes(model, splits_with_val.val, 4, CPU)
    expected = [
        evaluate_clustering(torch.cat([codes.c, s], 1), splits_with_val.val.labels, 2, 2)["acc"]
        for s in codes.s
    ]
    acc = [round(100 * e["mean"], 2) for e in expected]
    assert record["by"] == BY_SPECIFIC_CODES and record["val_acc"] == acc
    assert splits.best_view == record["view"] == max(range(2), key=lambda v: (acc[v], -v))
    # the test split is never read: scrambling it changes nothing
    scrambled = dataclasses.replace(
        splits_with_val, test=splits_with_val.test.subset(torch.arange(8).flip(0), "t")
    )
    assert settle_best_view(model, scrambled, cfg, CPU)[1] == record


def test_a_stage_1_model_is_settled_by_its_raw_views(tiny_config, splits_with_val):
    model = ConsistencyModel(splits_with_val.view_shapes, tiny_config.model)
    _, record = settle_best_view(model, splits_with_val, _config(tiny_config, None), CPU)
    assert record["by"] == BY_RAW_VIEWS and len(record["val_acc"]) == 2


def test_without_a_val_split_it_is_view_0_and_says_so(tiny_config, tiny_splits, caplog):
    model = MRDD(tiny_splits.view_shapes, tiny_config.model)
    with caplog.at_level(logging.WARNING, logger="mrdd"):
        splits, record = settle_best_view(model, tiny_splits, _config(tiny_config, None), CPU)
    assert splits.best_view == 0 and record == {"view": 0, "by": NO_VAL_SPLIT}
    assert "no val split to choose it on" in caplog.text


def _row(representation: str, split: str, mean: float, task: str = "clustering") -> dict:
    return {"task": task, "representation": representation, "metric": "acc", "split": split} | {
        "mean": mean
    }


def test_the_code_to_report_is_the_best_on_val_not_on_test():
    rows = [
        _row("C", "val", 0.60),
        _row("C+S_best", "val", 0.64),
        _row("C+S_all", "val", 0.62),
        _row("S_0", "val", 0.90),  # not a code to report
        _row("raw_best", "val", 0.95),  # the floor, not a code
        _row("C", "test", 0.99),  # test never chooses
        _row("C+S_all", "val", 0.99, task="clustering_umap"),  # nor does another protocol
    ]
    assert best_on_val(rows) == {
        "representation": "C+S_best",
        "val_acc": {"C": 60.0, "C+S_best": 64.0, "C+S_all": 62.0},
    }
    assert best_on_val([_row("C", "test", 0.5)]) is None
    tie = [_row("C", "val", 0.6), _row("C+S_all", "val", 0.6)]
    assert best_on_val(tie)["representation"] == "C"  # ties to the simpler code


def test_a_two_stage_run_chooses_on_val_records_it_and_says_it(tmp_path):
    write_image_npz(tmp_path / "data.npz", n=60)
    cfg = RunConfig.from_dict(tiny_run_dict(tmp_path / "data.npz", stage2={"epochs": 1}))
    assert cfg.dataset["best_view"] is None
    mrdd.train.run(cfg, tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    choice = metrics["best_view_choice"]
    assert choice["by"] == BY_SPECIFIC_CODES and metrics["best_view"] == choice["view"]
    assert mrdd.load(tmp_path / "run").best_view == choice["view"]
    assert metrics["best_on_val"]["representation"] in ("C", "C+S_best", "C+S_all")
    text = (tmp_path / "run" / "metrics.md").read_text()
    assert f"`C+S_best` is `C‖S_{choice['view']}` (chosen on val" in text
    assert f"Best on val (KMeans ACC, %): **{metrics['best_on_val']['representation']}**" in text
    # evaluating again settles the same view, and writes the same record
    again = mrdd.evaluate(tmp_path / "run", out_dir=tmp_path / "again")
    assert again["best_view_choice"] == choice


def test_metrics_written_before_the_choice_render_as_before():
    metrics = {"dataset": "d", "model": "mrdd", "stage": "all", "seed": 0, "scores": []}
    title = "# Evaluation of d (mrdd model, stage all, seed 0)\n"
    assert metrics_markdown(metrics).startswith(title)
