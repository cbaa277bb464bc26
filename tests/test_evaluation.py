"""The evaluation of a trained run: files, metrics.json schema, figures, script, monitor."""

from __future__ import annotations

import ast
import csv
import dataclasses
import json
import logging
import runpy
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY_MODEL, make_views
from PIL import Image

import mrdd
from mrdd.config import ConfigError, RunConfig
from mrdd.data import MultiViewData
from mrdd.eval import extract_codes, metrics_markdown, named_representations
from mrdd.eval.figures import RECORD_META
from mrdd.eval.gallery import SplitCodes, write_figures
from mrdd.eval.manifold import manifold_codes
from mrdd.eval.metrics import evaluate_clustering
from mrdd.eval.protocol import mlp_skip_reason, redundancy_rows
from mrdd.models import MRDD, Codes, ConsistencyModel
from mrdd.train import run
from mrdd.train.monitor import TrainingMonitor

N_SEEDS = 2
EPOCHS = 2
SUMMARY = {"mean", "std", "runs"}
REPRESENTATIONS = ["C", "S_0", "S_1", "C+S_best", "C+S_all"]
#: What KMeans clusters: the representations and the raw-input floor.
CLUSTERED = [*REPRESENTATIONS, "raw_best"]
#: What the umap method embeds and clusters (mrdd.eval.representations.MANIFOLD).
EMBEDDED = ["C", "C+S_best", "C+S_all", "raw_best"]
#: Each method's clustered representations.
CLUSTERED_BY = {"clustering": CLUSTERED, "clustering_umap": EMBEDDED}
#: The rows' task of each clustering method (eval.clustering), the paper's KMeans first.
CLUSTERING = ["clustering", "clustering_umap"]
FIGURES = {
    # name: (width, height) in pixels; see the size notes in mrdd/eval/figures.py
    "reconstructions.png": (800, 350),  # 2 views × 5 columns (4 samples, at least 5), 5 rows
    "swap_view0.png": (340, 360),  # 4 samples: a 5×5 grid
    "swap_view1.png": (340, 360),
    "samples_view0.png": (640, 300),  # two 4×5 grids
    "samples_view1.png": (640, 300),
    "tsne.png": (1020, 450),  # C and C+S_best
    "umap.png": (1020, 450),  # the same, in the umap clustering method's embedding
    "curves.png": None,  # 12 inches wide, 2.4 per row of 4 panels: see _curves_size
}


def _curves_size(history: dict) -> tuple[int, int]:
    """One panel per logged term and one for the periodic evaluation, per stage."""
    panels = sum(
        len([k for k in records[0] if k not in RECORD_META and not k.startswith("eval_")]) + 1
        for records in history.values()
    )
    return 1200, 240 * -(-panels // 4)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> tuple[Path, dict]:
    """Both stages, two epochs each, on a 40/16 split of tiny two-view images."""
    root = tmp_path_factory.mktemp("evaluation")
    views, labels = make_views(56)
    np.savez(
        root / "tiny.npz",
        view_0=views[0].numpy(),
        view_1=views[1].numpy(),
        labels=labels.numpy(),
        split=(np.arange(56) >= 40).astype(np.int64),
    )
    cfg = RunConfig.from_dict(
        {
            "dataset": {"name": "npz", "path": str(root / "tiny.npz")},
            "model": TINY_MODEL,
            "stage1": {"epochs": EPOCHS, "batch_size": 8},
            "stage2": {"epochs": EPOCHS, "batch_size": 8},
            "run": {"device": "cpu", "log_every": 1, "eval_every": 1},
            "eval": {"n_seeds": N_SEEDS, "num_figure_samples": 4},
        }
    )
    metrics = run(cfg, root / "run")
    return root / "run", metrics


def test_training_run_writes_every_file(trained_run):
    run_dir, _ = trained_run
    expected = {
        "config.json", "consistency.pt", "mrdd.pt", "history.json", "progress.csv",
        "train.log", "metrics.json", "metrics.md", *FIGURES,
    }  # fmt: skip
    assert expected <= {p.name for p in run_dir.iterdir()}
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))


def _scores(metrics: dict, task: str, split: str = "test") -> dict[str, dict[str, dict]]:
    """``{representation: {metric: row}}`` of one task's score rows on ``split``."""
    out: dict[str, dict[str, dict]] = {}
    for row in metrics["scores"]:
        if (row["task"], row["split"]) == (task, split):
            assert row["metric"] not in out.setdefault(row["representation"], {})
            out[row["representation"]][row["metric"]] = row
    return out


def test_metrics_json_schema(trained_run):
    run_dir, returned = trained_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(returned))
    assert metrics["model"] == "mrdd" and metrics["eval"]["n_seeds"] == N_SEEDS
    assert metrics["representations"] == {"C": 4, "S_0": 3, "S_1": 3, "C+S_best": 7, "C+S_all": 10}
    assert metrics["splits"] == {"train": 36, "val": 4, "test": 16}  # val: 10% of train
    assert list(metrics["methods"]) == [*CLUSTERING, "classification", "redundancy"]
    assert "n_neighbors=15" in metrics["methods"]["clustering_umap"]
    assert metrics["skipped"] == {}
    assert sorted(metrics["figures"]) == sorted(FIGURES)
    assert {"environment", "seconds"} <= set(metrics)
    fields = {"task", "representation", "metric", "split", "runs", "mean", "std", "values"}
    for row in metrics["scores"]:
        assert set(row) == fields
        assert row["runs"] == len(row["values"])
        assert row["mean"] == pytest.approx(np.mean(row["values"]))
        assert row["std"] == pytest.approx(np.std(row["values"]))

    tasks = [row["task"] for row in metrics["scores"]]
    assert list(dict.fromkeys(tasks)) == [*CLUSTERING, "classification", "redundancy"]
    for task in CLUSTERING:  # every method: both splits, its representations, the floor
        for split in ("test", "val"):  # eval.split, then eval.also_cluster
            clu = _scores(metrics, task, split)
            assert list(clu) == CLUSTERED_BY[task]
            for scores in clu.values():
                assert list(scores) == ["acc", "nmi", "ari", "fscore", "purity"]
                for key, row in scores.items():
                    assert (row["split"], row["runs"]) == (split, N_SEEDS)
                    assert 0.0 <= row["mean"] <= 1.0 or key == "ari"
    unclustered = {row["split"] for row in metrics["scores"] if row["task"] not in CLUSTERING}
    assert unclustered == {"test"}

    cls = _scores(metrics, "classification")
    assert list(cls) == REPRESENTATIONS
    for scores in cls.values():
        metrics_ = ("accuracy", "precision_macro", "f1_macro")
        assert list(scores) == [f"{clf}.{m}" for clf in ("svm", "linear") for m in metrics_]
        assert all((row["split"], row["runs"]) == ("test", N_SEEDS) for row in scores.values())

    red = _scores(metrics, "redundancy")
    assert list(red) == ["S_0", "S_1", "C"]
    for name in ("S_0", "S_1"):
        assert red[name]["club"]["runs"] == 1 and red[name]["club"]["std"] == 0.0
        assert sorted(red[name]) == sorted(
            ["club", *(f"r2_{t}_{r}" for t in ("C", "labels") for r in ("ridge", "mlp"))]
        )
        for metric, row in red[name].items():
            assert row["split"] == "test"
            assert row["runs"] == (1 if metric == "club" else N_SEEDS)
    assert list(red["C"]) == ["r2_labels_ridge", "r2_labels_mlp"]


def test_metrics_md_has_every_table_and_row(trained_run):
    text = (trained_run[0] / "metrics.md").read_text()
    runs = f"mean ± std over {N_SEEDS} runs, seeds 0–{N_SEEDS - 1}"
    kmeans = "## Clustering: kmeans, the paper's protocol"
    umap = "## Clustering: umap, UMAP fitted on train, then KMeans"
    for title in (kmeans, umap):
        assert f"{title} (test split, 16 samples; {runs}; %)" in text
        assert f"{title} (val split, 4 samples; {runs}; %)" in text
    assert text.index(kmeans) < text.index(umap) < text.index("## Classif")
    assert text.index("(test split, 16") < text.index("(val split, 4") < text.index(umap)
    assert f"## Classification (test split, 16 samples; {runs}; %)" in text
    assert "fitted on a stratified 90% subsample of the train split" in text
    assert f"## Redundancy (test split, 16 samples; {runs} (club: 1)" in text
    assert "| representation | acc | nmi | ari | fscore | purity |" in text
    for name in CLUSTERED:
        assert f"| {name} |" in text


def test_progress_csv_and_history_hold_losses_and_periodic_scores(trained_run):
    run_dir, _ = trained_run
    with (run_dir / "progress.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["stage"], r["epoch"]) for r in rows] == [
        ("consistency", "1"), ("consistency", "2"), ("disentangle", "1"), ("disentangle", "2"),
    ]  # fmt: skip
    assert all(0.0 <= float(r["eval_acc"]) <= 1.0 for r in rows)
    assert rows[0]["kl_c"] and rows[-1]["club_0"]
    history = json.loads((run_dir / "history.json").read_text())
    assert [len(history[s]) for s in ("consistency", "disentangle")] == [EPOCHS, EPOCHS]
    assert all("eval_nmi" in record for s in history for record in history[s])


def test_figures_are_pngs_of_the_expected_size(trained_run):
    history = json.loads((trained_run[0] / "history.json").read_text())
    for name, size in {**FIGURES, "curves.png": _curves_size(history)}.items():
        with Image.open(trained_run[0] / name) as image:
            assert image.format == "PNG", name
            assert image.size == size, name


def test_evaluate_script_applies_overrides(trained_run, tmp_path, capsys):
    run_dir, _ = trained_run
    main = runpy.run_path("scripts/evaluate.py")["main"]
    code = main(
        [
            f"run_dir={run_dir}",
            f"out_dir={tmp_path}",
            "eval.split=train",
            "eval.also_cluster=[]",
            "eval.n_seeds=1",
            "eval.figures=false",
            "eval.classifiers=[linear]",
            "eval.regressors=[ridge]",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    for title in ("kmeans, the paper's protocol", "umap, UMAP fitted on train, then KMeans"):
        assert f"## Clustering: {title} (train split, 36 samples; mean ± std over 1 runs" in out
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert {row["split"] for row in metrics["scores"] if row["task"] != "classification"} == {
        "train"
    }
    assert list(_scores(metrics, "clustering_umap", "train")) == EMBEDDED  # the fitted one
    assert set(_scores(metrics, "classification")["C"]) == {
        "linear.accuracy", "linear.precision_macro", "linear.f1_macro",
    }  # fmt: skip
    redundancy = _scores(metrics, "redundancy", "train")["S_0"]
    assert set(redundancy) == {"r2_C_ridge", "club", "r2_labels_ridge"}
    assert {row["runs"] for row in metrics["scores"]} == {1}
    assert metrics["figures"] == [] and not list(tmp_path.glob("*.png"))
    assert (tmp_path / "metrics.md").is_file()


def test_evaluate_a_stage1_only_run(trained_run, tmp_path):
    run_dir, _ = trained_run
    for name in ("consistency.pt", "config.json", "history.json"):
        shutil.copy(run_dir / name, tmp_path / name)
    metrics = mrdd.evaluate(tmp_path, {"eval": {"n_seeds": 1, "classifiers": []}})
    assert metrics["model"] == "consistency"
    for task in CLUSTERING:
        assert list(_scores(metrics, task)) == ["C", "raw_best"]
    assert {row["task"] for row in metrics["scores"]} == set(CLUSTERING)
    assert list(metrics["methods"]) == CLUSTERING and metrics["representations"] == {"C": 4}
    assert metrics["figures"] == ["reconstructions.png", "tsne.png", "umap.png", "curves.png"]
    for name in ("tsne.png", "umap.png"):
        with Image.open(tmp_path / name) as image:
            assert image.size == (570, 450)  # one panel


def test_evaluate_refuses_unknown_or_invalid_options(trained_run):
    with pytest.raises(ConfigError, match="eval.nope"):
        mrdd.evaluate(trained_run[0], {"eval": {"nope": 1}})
    with pytest.raises(ConfigError, match="eval.classifiers"):
        mrdd.evaluate(trained_run[0], {"eval": {"classifiers": ["forest"]}})


def test_mlp_redundancy_is_skipped_with_its_reason_on_a_too_small_split():
    assert mlp_skip_reason(16) is None
    g = torch.Generator().manual_seed(0)
    c, s = torch.randn(12, 4, generator=g), torch.randn(12, 3, generator=g)
    labels = torch.arange(12) % 2
    ev = RunConfig.from_dict({"eval": {"n_seeds": 1, "regressors": ["ridge", "mlp"]}}).eval
    rows, skipped = redundancy_rows(Codes(c, [s]), labels, 2, {"S_0": 0.0}, ev, 0)
    assert "12 samples leave 9 for fitting" in skipped["mlp"]
    assert [(r["representation"], r["metric"]) for r in rows] == [
        ("S_0", "r2_C_ridge"), ("S_0", "club"), ("S_0", "r2_labels_ridge"),
        ("C", "r2_labels_ridge"),
    ]  # fmt: skip
    text = metrics_markdown(
        {"dataset": "d", "model": "mrdd", "stage": "all", "seed": 0, "scores": rows,
         "splits": {"test": 12}, "methods": {"redundancy": "R²."},
         "skipped": {"redundancy": skipped}}
    )  # fmt: skip
    assert (
        "## Redundancy (test split, 12 samples; mean ± std over 1 runs, seed 0; R², CLUB in nats)"
        in text
    )
    assert "| C | – | – | " in text  # C has no r2_C nor club
    assert "Skipped: mlp (12 samples leave 9" in text


def test_monitor_probes_every_n_epochs_only(tmp_path, tiny_splits, tiny_config):
    model = ConsistencyModel(tiny_splits.view_shapes, tiny_config.model)
    cfg = tiny_config.with_overrides(
        {"run": {"eval_every": 2}, "eval": {"progress_samples": 6, "batch_size": 4}}
    )
    monitor = TrainingMonitor(tmp_path, tiny_splits, cfg, torch.device("cpu"))
    callback = monitor.callback("consistency", model)
    records = [{"loss": 1.0 / (e + 1), "epoch": e + 1} for e in range(4)]
    for epoch, record in enumerate(records):
        callback(epoch, record)
    monitor.close()
    assert len(monitor.probe) == 6
    assert ["eval_acc" in r for r in records] == [False, True, False, True]
    with (tmp_path / "progress.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["eval_acc"] != "" for r in rows] == [False, True, False, True]
    assert [float(r["loss"]) for r in rows] == [r["loss"] for r in records]


def test_vector_views_get_line_plots_and_no_image_grids(tmp_path, tiny_config, caplog):
    views, labels = make_views(12)
    views[1] = views[1].flatten(1)[:, :6]  # a 6-feature vector view
    data = MultiViewData(views, labels, "mixed")
    cfg = tiny_config.with_overrides({"model": {"backbone": {"mlp_hidden": [8]}}})
    model = MRDD(data.view_shapes, cfg.model)
    codes = extract_codes(model, data, 8, torch.device("cpu"))
    reps = named_representations(codes.c, codes.s, 0)
    embedded = manifold_codes({"train": reps}, ["train"], ["C", "C+S_best"], cfg.eval, 0)
    with caplog.at_level(logging.INFO, logger="mrdd"):
        written = write_figures(model, data, SplitCodes(reps, embedded["train"]), {}, cfg, tmp_path)
    assert written == [
        "reconstructions.png", "swap_view0.png", "samples_view0.png", "tsne.png", "umap.png",
    ]  # fmt: skip
    assert "view 1 holds feature vectors" in caplog.text


def test_representations_are_named_in_one_place():
    c, s0, s1 = torch.ones(2, 1), 2 * torch.ones(2, 2), 3 * torch.ones(2, 1)
    reps = named_representations(c, [s0, s1], best_view=1)
    assert list(reps) == REPRESENTATIONS
    assert reps["C+S_best"].tolist() == [[1, 3]] * 2
    assert reps["C+S_all"].tolist() == [[1, 2, 2, 3]] * 2
    assert list(named_representations(c, [], 0)) == ["C"]
    for path in Path(mrdd.__file__).parent.rglob("*.py"):  # no other module spells a name
        if path.name != "representations.py":
            tree = ast.parse(path.read_text())
            strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
            assert not strings & {"C+S_best", "C+S_all", "S_"}, path


def test_monitor_probes_the_c_plus_s_best_that_the_evaluation_names(
    tmp_path, tiny_splits, tiny_config
):
    """With dataset.best_view set, the probe clusters that C‖S_best; with it null (chosen
    on val after training), C‖S_all, since C‖S_best does not exist yet."""
    cpu = torch.device("cpu")
    model = MRDD(tiny_splits.view_shapes, tiny_config.model)
    cfg = tiny_config.with_overrides(
        {"run": {"eval_every": 1}, "eval": {"progress_samples": 6, "batch_size": 4}}
    )
    for best_view, probed_name in ((1, "C+S_best"), (None, "C+S_all")):
        splits = dataclasses.replace(tiny_splits, best_view=best_view)
        monitor = TrainingMonitor(tmp_path, splits, cfg, cpu)
        codes = extract_codes(model, monitor.probe, 4, cpu)
        reps = named_representations(codes.c, codes.s, best_view)
        assert ("C+S_best" in reps) == (best_view is not None)
        labels, k = monitor.probe.labels, tiny_splits.num_classes
        expected = evaluate_clustering(reps[probed_name], labels, k, n_seeds=1)
        scores = {f"eval_{key}": expected[key]["mean"] for key in ("acc", "nmi", "ari")}
        assert monitor.probe_scores(model) == scores
        monitor.close()


def test_a_resumed_monitor_keeps_the_rows_it_does_not_train_again(
    tmp_path, tiny_splits, tiny_config
):
    model = ConsistencyModel(tiny_splits.view_shapes, tiny_config.model)

    def log_epochs(first: int, last: int, loss: float, resume: bool) -> None:
        cfg = tiny_config.with_overrides({"run": {"eval_every": 0}})
        monitor = TrainingMonitor(tmp_path, tiny_splits, cfg, torch.device("cpu"), resume)
        callback = monitor.callback("consistency", model)
        for epoch in range(first, last):
            callback(epoch, {"loss": loss, "epoch": epoch + 1})
        monitor.close()

    log_epochs(0, 4, 1.0, resume=False)
    log_epochs(2, 3, 2.0, resume=True)  # the saved state was after epoch 2
    with (tmp_path / "progress.csv").open() as f:
        rows = [(r["epoch"], r["loss"]) for r in csv.DictReader(f)]
    assert rows == [("1", "1.0"), ("2", "1.0"), ("3", "2.0")]
