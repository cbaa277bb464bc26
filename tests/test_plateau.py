"""The plateau stop: it stops after ``patience`` probes without a better val score, the stage
keeps its best epoch's weights, it only ever looks at val, it is recorded, and it resumes."""

from __future__ import annotations

import csv
import json
import math
from collections import Counter

import pytest
import torch
from helpers import make_views, tiny_run_dict, write_image_npz
from test_resume import assert_same_run

from mrdd.config import ConfigError, RunConfig
from mrdd.data import BatchLoader, DatasetSplits, MultiViewData
from mrdd.models import MRDD, ConsistencyModel
from mrdd.train import ConsistencyStage, fit, resume, run
from mrdd.train.monitor import TrainingMonitor
from mrdd.train.plateau import PlateauStop, plateau_summary

CPU = torch.device("cpu")


def _records(scores: list[float | None]) -> list[dict[str, float]]:
    """Epoch records, probed (``eval_acc``) where the score is not None."""
    return [
        {"epoch": e + 1, **({"eval_acc": s} if s is not None else {})} for e, s in enumerate(scores)
    ]


def test_stops_after_patience_probes_without_a_strict_improvement():
    model = torch.nn.Linear(1, 1)
    watch = PlateauStop("consistency", epochs=10, patience=2, metric="acc")
    # epoch 2 is best; 3 ties (no improvement), 4 is probe-free, 5 is worse: stop after 5
    records = _records([0.5, 0.8, 0.8, None, 0.7, 0.9])
    for record in records:
        watch.observe(record, model)
        if watch.stopped:
            break
    assert (watch.best_epoch, watch.best_score, watch.waited) == (2, 0.8, 2)
    assert records[4] == {
        "epoch": 5,
        "eval_acc": 0.7,
        "plateau_stop": 1.0,
        "plateau_best_epoch": 2.0,
        "plateau_best_score": 0.8,
    }
    assert all("plateau_stop" not in r for r in records[:4])  # only the last record says it


def test_no_stop_before_the_minimum_fraction_of_the_epochs(tiny_config):
    cfg = tiny_config.with_overrides({"run": {"plateau_patience": 1, "plateau_min_fraction": 0.5}})
    watch = PlateauStop.for_stage(cfg.run, "consistency", epochs=7)
    assert watch.min_epochs == 4  # ceil(0.5 × 7)
    stopped_after = None
    for record in _records([0.9, 0.5, 0.6, 0.7, 0.8, 0.95, 0.1]):  # best at 1, worse after
        watch.observe(record, torch.nn.Linear(1, 1))
        if watch.stopped:
            stopped_after = record["epoch"]
            break
    # patience 1 alone would have stopped after epoch 2; the minimum holds it until 4
    assert stopped_after == 4 and (watch.best_epoch, watch.waited) == (1, 3)


def test_a_stage_that_runs_every_epoch_records_its_best_epoch_too():
    watch = PlateauStop("disentangle", epochs=3, patience=5, metric="acc")
    records = _records([0.4, 0.6, 0.5])
    for record in records:
        watch.observe(record, torch.nn.Linear(1, 1))
    assert not watch.stopped
    assert records[-1]["plateau_stop"] == 0.0 and records[-1]["plateau_best_epoch"] == 2.0
    summary = plateau_summary({"disentangle": records}, RunConfig().run)
    assert summary["disentangle"]["stopped"] is False
    assert summary["disentangle"]["best_epoch"] == 2 and summary["disentangle"]["last_epoch"] == 3


def test_fit_stops_and_keeps_the_weights_of_the_best_epoch(tiny_config):
    views, labels = make_views(16)
    cfg = tiny_config.with_overrides({"stage1": {"epochs": 8}})
    model = ConsistencyModel([tuple(v.shape[1:]) for v in views], cfg.model)
    stage = ConsistencyStage(model, cfg, CPU)
    loader = BatchLoader(MultiViewData(views, labels), 8, shuffle=True, seed=0)
    watch = PlateauStop("consistency", epochs=8, patience=2, metric="acc")
    scores = [0.5, 0.7, 0.6, 0.65, 0.9, 0.9, 0.9, 0.9]  # best 2, then 2 worse: stop after 4
    weights = {}

    def on_epoch_end(epoch: int, record: dict[str, float]) -> None:
        record["eval_acc"] = scores[epoch]
        watch.observe(record, model)
        weights[epoch + 1] = {k: v.clone() for k, v in model.state_dict().items()}

    history = fit(stage, loader, on_epoch_end=on_epoch_end, plateau=watch)
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    assert history[-1]["plateau_stop"] == 1.0 and history[-1]["plateau_best_epoch"] == 2.0
    final = model.state_dict()
    assert all(torch.equal(final[k], weights[2][k]) for k in final)
    assert not all(torch.equal(final[k], weights[4][k]) for k in final)  # it did move on


def _splits_with_poisoned_test(n_val: int = 8) -> DatasetSplits:
    """Train and val from :func:`make_views`; every test value is NaN, so any read of
    test by the probe would make KMeans fail."""
    views, labels = make_views(16 + n_val + 8)
    data = MultiViewData(views, labels, "tiny")
    test = data.subset(torch.arange(16 + n_val, 16 + n_val + 8), "tiny/test")
    test.views = [torch.full_like(v, math.nan) for v in test.views]
    return DatasetSplits(
        train=data.subset(torch.arange(16), "tiny/train"),
        val=data.subset(torch.arange(16, 16 + n_val), "tiny/val"),
        test=test,
        num_classes=2,
        name="tiny",
    )


def test_the_probe_reads_val_only_and_stops_on_it(tmp_path, tiny_config):
    splits = _splits_with_poisoned_test()
    cfg = tiny_config.with_overrides(
        {"stage1": {"epochs": 6}, "run": {"plateau_patience": 1}, "eval": {"progress_samples": 6}}
    )
    monitor = TrainingMonitor(tmp_path, splits, cfg, CPU)
    val_rows = {tuple(row.flatten().tolist()) for row in splits.val.views[0]}
    assert len(monitor.probe) == 6
    assert all(tuple(row.flatten().tolist()) in val_rows for row in monitor.probe.views[0])
    model = ConsistencyModel(splits.view_shapes, cfg.model)
    stage = ConsistencyStage(model, cfg, CPU)
    watch = PlateauStop.for_stage(cfg.run, "consistency", cfg.stage1.epochs)
    loader = BatchLoader(splits.train, 8, shuffle=True, seed=0)
    history = fit(
        stage, loader, on_epoch_end=monitor.callback("consistency", model, watch), plateau=watch
    )
    monitor.close()
    assert all(0.0 <= r["eval_acc"] <= 1.0 for r in history)  # scores of real, finite data
    assert "plateau_stop" in history[-1]
    with (tmp_path / "progress.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows[-1]["plateau_best_epoch"] == str(history[-1]["plateau_best_epoch"])


def test_refused_without_a_val_split(tmp_path, tiny_config, tiny_splits):
    assert tiny_splits.val is None
    cfg = tiny_config.with_overrides({"run": {"plateau_patience": 3}})
    with pytest.raises(ConfigError, match="no val split; set dataset.val_fraction > 0"):
        TrainingMonitor(tmp_path, tiny_splits, cfg, CPU)


@pytest.mark.parametrize(
    ("runtime", "message"),
    [
        ({"plateau_patience": 0}, "positive number of probes or null"),
        ({"plateau_patience": 2, "eval_every": 0}, "run.eval_every=0 turns it off"),
        ({"plateau_metric": "f1"}, "plateau_metric"),
        ({"plateau_min_fraction": 1.0}, "plateau_min_fraction"),
        ({"plateau_min_fraction": -0.1}, "plateau_min_fraction"),
    ],
)
def test_bad_plateau_settings_are_one_line_errors(runtime, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_dict({"run": runtime})


#: Scripted val scores per stage, by probe number: stage 1 peaks at epoch 2 and stops after
#: epoch 4 (patience 2); stage 2 improves every epoch and runs both of its epochs.
SCRIPT = {ConsistencyModel: [0.5, 0.8, 0.7, 0.6, 0.9], MRDD: [0.5, 0.6]}


@pytest.fixture
def scripted_probe(monkeypatch):
    """The probe runs, but its scores are replaced by :data:`SCRIPT` (the n-th probe of a
    stage's model gets its n-th score), so that when the stop comes is known."""
    calls: Counter = Counter()
    probe = TrainingMonitor.probe_scores

    def scripted(self, model):
        real = probe(self, model)
        calls[type(model)] += 1
        return {**real, "eval_acc": SCRIPT[type(model)][calls[type(model)] - 1]}

    monkeypatch.setattr(TrainingMonitor, "probe_scores", scripted)
    return calls


def _plateau_run_config(npz) -> RunConfig:
    cfg = tiny_run_dict(
        npz, stage1={"epochs": 5}, stage2={"epochs": 2}, run={"plateau_patience": 2}
    )
    cfg["eval"].update(classifiers=[], regressors=[], figures=False)
    return RunConfig.from_dict(cfg)


def test_a_run_records_the_stop_and_saves_the_best_weights(tmp_path, scripted_probe):
    write_image_npz(tmp_path / "data.npz")
    run(_plateau_run_config(tmp_path / "data.npz"), tmp_path / "run")
    out = tmp_path / "run"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["plateau"]["consistency"] == {
        "stopped": True,
        "last_epoch": 4,
        "best_epoch": 2,
        "best_val_score": 0.8,
        "metric": "val eval_acc (one KMeans run on the probe subsample)",
        "patience": 2,
        "min_fraction": 0.0,
        "reason": "the val probe did not improve for run.plateau_patience probes",
    }
    assert metrics["plateau"]["disentangle"]["stopped"] is False
    assert metrics["plateau"]["disentangle"]["best_epoch"] == 2
    with (out / "progress.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["stage"] == "consistency"]
    assert [r["epoch"] for r in rows] == ["1", "2", "3", "4"]
    assert rows[-1]["plateau_stop"] == "1.0" and rows[-1]["plateau_best_epoch"] == "2.0"
    state = torch.load(out / "consistency_state.pt", weights_only=True)
    assert state["epoch"] == 4 and state["plateau"]["stopped"]
    saved = torch.load(out / "consistency.pt", weights_only=True)["state_dict"]
    best = state["plateau"]["best_state"]
    # BatchNorm statistics are re-estimated after the stage (calibrate_bn); the rest is best
    weights = [k for k in saved if "running" not in k and "num_batches" not in k]
    assert all(torch.equal(saved[k], best[k]) for k in weights)
    assert not all(torch.equal(saved[k], state["state_dict"][k]) for k in weights)


class Crash(Exception):
    """Stands in for the process dying mid-epoch."""


def test_a_run_crashed_before_its_stop_resumes_to_the_same_stop(
    tmp_path, monkeypatch, scripted_probe
):
    write_image_npz(tmp_path / "data.npz")  # 34 training samples: 4 steps per epoch
    cfg = _plateau_run_config(tmp_path / "data.npz")
    run(cfg, tmp_path / "reference")
    scripted_probe.clear()
    steps = iter(range(1, 100))
    original = ConsistencyStage.step

    def step_or_crash(self, batch):
        if next(steps) == 14:  # in epoch 4: the state after epoch 3 has 1 probe without a best
            raise Crash
        return original(self, batch)

    monkeypatch.setattr(ConsistencyStage, "step", step_or_crash)
    with pytest.raises(Crash):
        run(cfg, tmp_path / "crashed")
    monkeypatch.setattr(ConsistencyStage, "step", original)
    state = torch.load(tmp_path / "crashed" / "consistency_state.pt", weights_only=True)
    assert state["epoch"] == 3
    assert (state["plateau"]["best_epoch"], state["plateau"]["waited"]) == (2, 1)
    resume(tmp_path / "crashed")
    assert_same_run(tmp_path / "reference", tmp_path / "crashed")
    metrics = [
        json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("reference", "crashed")
    ]
    assert metrics[0]["plateau"] == metrics[1]["plateau"]
