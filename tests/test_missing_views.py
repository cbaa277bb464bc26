"""Incomplete multi-view data: availability masks, training that ignores absent views,
encoding from present views only, and imputation of the absent ones."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from helpers import TINY_MODEL, make_views, write_image_npz

from mrdd.api import TrainedModel
from mrdd.config import RunConfig, Stage1Config, Stage2Config
from mrdd.data import Batch, BatchLoader, DataError, MultiViewData, load_dataset
from mrdd.data.missing import drop_views, random_availability
from mrdd.models import (
    MRDD,
    ConsistencyModel,
    consistency_loss,
    view_model_loss,
    view_weights,
    zero_absent_views,
)
from mrdd.train.stages import ConsistencyStage, DisentangleStage


def _mask(n: int) -> torch.Tensor:
    """Two views: the first third miss view 1, the second third miss view 0."""
    available = torch.ones(n, 2, dtype=torch.bool)
    available[: n // 3, 1] = False
    available[n // 3 : 2 * n // 3, 0] = False
    return available


def _scramble_absent(views, available):
    """The views with every absent entry replaced by large noise."""
    out = []
    for v, x in enumerate(views):
        absent = (~available[:, v]).view(-1, *([1] * (x.ndim - 1)))
        out.append(torch.where(absent, torch.randn_like(x) * 100, x))
    return out


@pytest.mark.parametrize("rate", [0.0, 0.3, 0.99])
def test_random_availability_keeps_a_view_per_sample_and_is_seeded(rate):
    mask = random_availability(200, 3, rate, seed=5)
    assert mask.any(dim=1).all()
    assert int((~mask.all(dim=1)).sum()) == round(rate * 200)
    assert torch.equal(mask, random_availability(200, 3, rate, seed=5))
    if rate > 0:
        assert not torch.equal(mask, random_availability(200, 3, rate, seed=6))


def test_multiview_data_validates_the_mask_and_ignores_absent_content():
    views, labels = make_views(9)
    available = _mask(9)
    views[0][3:6] = float("nan")  # absent entries may hold anything
    data = MultiViewData(views, labels, "t", available)
    assert torch.equal(data.views[0][3:6], torch.zeros_like(data.views[0][3:6]))
    assert not data.complete and data.subset(torch.arange(3)).available.shape == (3, 2)
    with pytest.raises(DataError, match="N×V"):
        MultiViewData(make_views(9)[0], labels, "t", torch.ones(9, 3, dtype=torch.bool))
    with pytest.raises(DataError, match="no view at all"):
        MultiViewData(make_views(9)[0], labels, "t", torch.zeros(9, 2, dtype=torch.bool))


def test_missing_rate_applies_to_both_splits_and_loader_yields_masks(tmp_path):
    write_image_npz(tmp_path / "d.npz", n=60)
    options = {
        "name": "npz",
        "path": str(tmp_path / "d.npz"),
        "missing_rate": 0.5,
        "val_fraction": 0,
    }
    splits = load_dataset({**options, "missing_seed": 1})
    for data in (splits.train, splits.test):
        assert int((~data.available.all(dim=1)).sum()) == round(0.5 * len(data))
    again = load_dataset({**options, "missing_seed": 1})
    assert torch.equal(splits.train.available, again.train.available)
    available = next(iter(BatchLoader(splits.train, 8, shuffle=False))).available
    assert torch.equal(available, splits.train.available[:8])
    with pytest.raises(DataError, match="already has missing views"):
        drop_views(splits.train, 0.2, seed=0)
    complete = load_dataset(
        {"val_fraction": 0, "name": "npz", "path": str(tmp_path / "d.npz")}
    ).test
    before = [x.clone() for x in complete.views]
    dropped = drop_views(complete, 0.5, seed=0)
    assert all(torch.equal(x, y) for x, y in zip(before, complete.views, strict=True))
    assert not torch.equal(dropped.views[0], complete.views[0])


def test_npz_available_key_is_read(tmp_path):
    mask = np.ones((48, 2), dtype=np.int64)
    mask[::4, 1] = 0
    write_image_npz(tmp_path / "d.npz", available=mask)
    splits = load_dataset({"val_fraction": 0, "name": "npz", "path": str(tmp_path / "d.npz")})
    assert int((~splits.train.available).sum() + (~splits.test.available).sum()) == 12


def _tiny_mrdd() -> MRDD:
    torch.manual_seed(0)
    return MRDD([(1, 8, 8), (1, 8, 8)], RunConfig.from_dict({"model": TINY_MODEL}).model).eval()


def test_encode_ignores_absent_views_entirely():
    model = _tiny_mrdd()
    views, _ = make_views(12)
    available = _mask(12)
    codes = model.encode(views, available)
    other = model.encode(_scramble_absent(views, available), available)
    assert torch.equal(codes.c, other.c)
    for s, t in zip(codes.s, other.s, strict=True):
        assert torch.equal(s, t)
    assert torch.equal(codes.s[1][:4], torch.zeros_like(codes.s[1][:4]))
    assert not torch.allclose(codes.c, model.encode(views).c)  # the mask does change c


def test_losses_ignore_absent_views():
    model = _tiny_mrdd()
    views, _ = make_views(12)
    available = _mask(12)
    scrambled = _scramble_absent(views, available)
    weights = view_weights(views, available)

    def stage1_loss(x: list[torch.Tensor], w: torch.Tensor) -> torch.Tensor:
        x = zero_absent_views(x, w)
        out = model.consistency(x)
        terms = consistency_loss(out.mu, out.logvar, out.reconstructions, x, w, Stage1Config())
        return terms["loss"]

    stage1 = [stage1_loss(x, weights) for x in (views, scrambled)]
    assert torch.equal(stage1[0], stage1[1])
    stage2 = []
    for x in (views, scrambled):
        x = zero_absent_views(x, weights)
        c = model.consistent_code(x)
        outputs = model.specific(x, c)
        predictions = model.club([out.s for out in outputs])
        stage2.append(view_model_loss(x, outputs, predictions, c, weights, Stage2Config())["loss"])
    assert torch.allclose(stage2[0], stage2[1])
    complete = stage1_loss(views, view_weights(views))
    assert not torch.allclose(complete, stage1[0])


def _latent_views(n: int, seed: int) -> list[torch.Tensor]:
    """Two vector views that are fixed functions of a 2-d latent (so a view is predictable
    from the other)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.rand(n, 2, generator=g) * 2 - 1
    basis = torch.Generator().manual_seed(99)
    a0, a1 = torch.randn(2, 12, generator=basis), torch.randn(2, 12, generator=basis)
    return [z @ a0, torch.tanh(z @ a1)]


def test_impute_predicts_missing_views_better_than_the_mean():
    torch.manual_seed(0)
    cfg = RunConfig.from_dict(
        {
            "model": {**TINY_MODEL, "c_dim": 4, "backbone": {"mlp_hidden": [32]}},
            "stage1": {"batch_size": 64, "lr": 3e-3, "mask_ratio": 0.5},
            "stage2": {"lr": 3e-3, "club_lr": 3e-3},
            "run": {"device": "cpu"},
        }
    )
    train = _latent_views(256, seed=0)
    shapes = [(12,), (12,)]
    stage1 = ConsistencyStage(ConsistencyModel(shapes, cfg.model), cfg, torch.device("cpu"))
    for _ in range(300):
        stage1.step(Batch.of(train))
    model = MRDD(shapes, cfg.model)
    model.consistency.load_state_dict(stage1.model.state_dict())
    stage2 = DisentangleStage(model, cfg, torch.device("cpu"))
    for _ in range(100):
        stage2.step(Batch.of(train))
    model.eval()

    test = _latent_views(64, seed=1)
    available = torch.ones(64, 2, dtype=torch.bool)
    available[:32, 1] = False
    available[32:, 0] = False
    trained = TrainedModel(cfg, shapes, model, best_view=0)
    filled = trained.impute(test, available)
    assert [x.shape for x in filled] == [x.shape for x in test]
    stage1 = trained.impute(test, available, source="consistency")
    assert [x.shape for x in stage1] == [x.shape for x in test]
    assert trained.best_imputer == "specific"  # "auto": the measured best for this training
    with_dropout = TrainedModel(
        cfg.with_overrides({"stage1": {"view_dropout": 0.5}}), shapes, model, best_view=0
    )
    assert with_dropout.best_imputer == "consistency"
    for auto, explicit in zip(with_dropout.impute(test, available), stage1, strict=True):
        assert torch.equal(auto, explicit)
    for v in range(2):
        absent = ~available[:, v]
        assert torch.equal(filled[v][~absent], test[v][~absent])
        error = (filled[v][absent] - test[v][absent]).pow(2).mean()
        baseline = (train[v].mean(0) - test[v][absent]).pow(2).mean()
        assert error < 0.5 * baseline, (v, float(error), float(baseline))


def test_a_run_trains_and_evaluates_with_missing_views(tmp_path):
    from helpers import tiny_run_dict

    from mrdd.train import run

    write_image_npz(tmp_path / "d.npz", n=48)
    dataset = {"name": "npz", "path": str(tmp_path / "d.npz"), "missing_rate": 0.5}
    config = tiny_run_dict(
        tmp_path / "d.npz",
        dataset=dataset,
        eval={"n_seeds": 1, "classifiers": [], "regressors": [], "figures": False},
        stage1={"epochs": 1, "batch_size": 8},
        stage2={"epochs": 1, "batch_size": 8},
        run={"eval_every": 0},
    )
    metrics = run(RunConfig.from_dict(config), tmp_path / "run")
    (acc,) = [
        row for row in metrics["scores"]
        if (row["task"], row["representation"], row["metric"], row["split"])
        == ("clustering", "C+S_best", "acc", "test")
    ]  # fmt: skip
    assert 0.0 <= acc["mean"] <= 1.0


def test_missing_views_evaluation_writes_table_csv_and_plot(tiny_splits, tmp_path):
    from mrdd.eval.missing import (
        evaluate_missing_views,
        missing_views_markdown,
        write_missing_views,
    )

    splits = dataclasses.replace(tiny_splits, best_view=0)
    rows = evaluate_missing_views(_tiny_mrdd(), splits, rates=[0.0, 0.5], n_seeds=1)
    assert [row["incomplete"] for row in rows] == [0, 4]
    assert "mse_spec" not in rows[0] and rows[1]["mse_spec"] > 0 and rows[1]["mse_cons"] > 0
    assert "c agreement (R²)" in missing_views_markdown(rows)
    assert 0.0 <= rows[1]["acc_C+S_best"]["mean"] <= 1.0
    markdown = write_missing_views(rows, tmp_path / "mv")
    assert "MSE imputed cons" in markdown and markdown.count("\n") == 4
    assert (tmp_path / "mv.png").stat().st_size > 0
    header = "missing_rate,split,n_samples,incomplete,c_agreement,acc_C mean"
    assert (tmp_path / "mv.csv").read_text().startswith(header)
    assert "c_agreement" not in rows[0] and rows[1]["c_agreement"] <= 1.0


def test_code_agreement_is_one_for_the_same_code_and_zero_for_the_mean_code():
    from mrdd.eval.missing import code_agreement

    c = torch.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, -1.0]])
    assert code_agreement(c, c) == 1.0
    assert code_agreement(c.mean(0).expand_as(c), c) == pytest.approx(0.0, abs=1e-6)
    # mean (2, 1): spread (4 + 4 + 8) / 3 per row; error 1 per row
    assert code_agreement(c + torch.tensor([1.0, 0.0]), c) == pytest.approx(1 - 3 / 16)


@pytest.mark.parametrize("seed", [0, 1])
def test_view_dropout_makes_c_from_one_view_agree_with_c_from_both(seed):
    """A toy: two noisy linear views of one 2-d latent. Stage 1 with whole-view dropout
    infers a c from either view alone that is closer to c from both views than stage 1
    without it (R² 0.67 → 0.74 and 0.57 → 0.75 for seeds 0 and 1 when written)."""
    from mrdd.eval.missing import code_agreement

    g = torch.Generator().manual_seed(seed)
    z = torch.randn(256, 2, generator=g)
    views = [z @ torch.randn(2, 8, generator=g) + 0.1 * torch.randn(256, 8, generator=g)]
    views.append(z @ torch.randn(2, 8, generator=g) + 0.1 * torch.randn(256, 8, generator=g))
    one_view = torch.zeros(256, 2, dtype=torch.bool)
    one_view[:128, 0] = one_view[128:, 1] = True
    agreement = {}
    for rate in (0.0, 0.5):
        torch.manual_seed(seed)
        cfg = RunConfig.from_dict(
            {
                "model": {**TINY_MODEL, "c_dim": 2},
                "stage1": {"lr": 3e-3, "mask_ratio": 0.3, "view_dropout": rate},
                "stage2": {"lr": 3e-3},
                "run": {"device": "cpu"},
            }
        )
        model = ConsistencyModel([(8,), (8,)], cfg.model)
        stage = ConsistencyStage(model, cfg, torch.device("cpu"))
        for _ in range(200):
            rows = torch.randint(0, 256, (64,))
            stage.step(Batch.of([x[rows] for x in views]))
        model.eval()
        with torch.no_grad():
            c_both, c_one = model.encode(views)[0], model.encode(views, one_view)[0]
        agreement[rate] = code_agreement(c_one, c_both)
    assert agreement[0.5] > agreement[0.0] + 0.03, agreement


def test_missing_view_rows_of_several_runs_are_averaged_per_rate():
    from mrdd.eval.missing import across_runs, missing_views_markdown

    def rows(acc: float, mse: float) -> list[dict]:
        return [
            {"missing_rate": 0.0, "n_samples": 10, "incomplete": 0, "acc_C": {"mean": acc}},
            {"missing_rate": 0.5, "n_samples": 10, "incomplete": 5, "acc_C": {"mean": acc - 0.1},
             "mse_cons": mse},
        ]  # fmt: skip

    merged = across_runs([rows(0.6, 0.02), rows(0.8, 0.04)])
    assert [(r["missing_rate"], r["runs"], r["incomplete"]) for r in merged] == [
        (0.0, 2, 0), (0.5, 2, 5),
    ]  # fmt: skip
    assert merged[1]["acc_C"]["mean"] == pytest.approx(0.6)
    assert merged[1]["acc_C"]["std"] == pytest.approx(0.1)
    assert merged[1]["mse_cons"]["mean"] == pytest.approx(0.03)
    text = missing_views_markdown(merged)
    assert "| 0.5 | 2 | 10 | 5 | 60.00 ± 10.00 | 0.0300 ± 0.0100 |" in text  # no split given
    with pytest.raises(ValueError, match="different missing rates"):
        across_runs([rows(0.6, 0.02), rows(0.6, 0.02)[:1]])
    other_data = rows(0.6, 0.02)
    other_data[1]["n_samples"] = 20
    with pytest.raises(DataError, match=r"differ in \['n_samples'\]"):
        across_runs([rows(0.6, 0.02), other_data])
