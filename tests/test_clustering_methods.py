"""The clustering methods of the protocol: kmeans (the paper's) and umap (UMAP fitted on
train, then KMeans), kept apart in every table, on planted clusters whose answer is known."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import make_views
from sklearn.datasets import make_circles, make_moons

from mrdd.config import ConfigError, EvalConfig, RunConfig
from mrdd.data import MultiViewData
from mrdd.eval import manifold
from mrdd.eval.ablate import ablate
from mrdd.eval.collect import collect
from mrdd.eval.manifold import _Embedding, _umap, exact_neighbours, manifold_codes
from mrdd.eval.metrics import evaluate_clustering
from mrdd.eval.representations import raw_floor
from mrdd.eval.tables import find_score, metrics_markdown, score_row

#: Planted two-cluster shapes that are not round: KMeans cuts them along a straight line.
SHAPES = {
    "moons": lambda n, seed: make_moons(n, noise=0.05, random_state=seed),
    "rings": lambda n, seed: make_circles(n, noise=0.03, factor=0.4, random_state=seed),
}


def _acc(x: np.ndarray | torch.Tensor, labels: np.ndarray) -> float:
    return evaluate_clustering(x, labels, 2, n_seeds=1, seed=0)["acc"]["mean"]


@pytest.mark.parametrize("shape", SHAPES)
def test_umap_then_kmeans_finds_planted_clusters_that_kmeans_splits_wrongly(shape):
    # train and test are separate draws: the embedding is fitted on train only
    x_train, _ = SHAPES[shape](400, 0)
    x_test, y_test = SHAPES[shape](200, 1)
    features = {
        "train": {"x": torch.tensor(x_train)},
        "test": {"x": torch.tensor(x_test)},
    }
    embedded = manifold_codes(features, ["test"], ["x"], EvalConfig(), seed=0)
    assert embedded["test"]["x"].shape == (200, 10)
    assert _acc(x_test, y_test) < 0.8  # hand-checked: 0.750 (moons), 0.505 (rings)
    assert _acc(embedded["test"]["x"], y_test) > 0.95  # hand-checked: 1.000 for both


def test_the_train_split_gets_the_fitted_embedding_and_one_fit_serves_all_splits():
    x, _ = make_moons(120, noise=0.05, random_state=0)
    features = {
        "train": {"x": torch.tensor(x[:80]), "y": torch.tensor(x[:80, ::-1].copy())},
        "test": {"x": torch.tensor(x[80:])},  # "y" lacks on test: embedded where present
    }
    ev = EvalConfig(umap_components=3, umap_neighbors=10)
    first = manifold_codes(features, ["train", "test"], ["x", "y"], ev, seed=0)
    again = manifold_codes(features, ["test", "train"], ["x", "y"], ev, seed=0)
    assert set(first["train"]) == {"x", "y"} and set(first["test"]) == {"x"}
    assert first["train"]["x"].shape == (80, 3) and first["test"]["x"].shape == (40, 3)
    for split in ("train", "test"):  # random_state=seed: the same embedding every time
        np.testing.assert_array_equal(first[split]["x"], again[split]["x"])


def test_auto_finds_umap_learns_exact_neighbours_from_scikit_learns_distances():
    x = np.random.default_rng(0).normal(size=(300, 6))  # under 4,096: umap-learn goes exact
    ev = EvalConfig(umap_knn="auto", umap_components=2)
    ours = _Embedding(ev, seed=0, train=x)
    assert ours.exact and ours.reducer.metric == "precomputed"
    own = _umap(ev, seed=0, n_train=300, precomputed=False)
    own.force_approximation_algorithm = False  # umap-learn's own exact path on the codes
    with manifold._quiet_umap():
        own.fit(x)
    assert own._small_data  # umap-learn's flag of that path
    # the same neighbour graph, so the same UMAP: only the distances' rounding differs
    np.testing.assert_allclose(ours.reducer.graph_.toarray(), own.graph_.toarray(), atol=1e-5)
    assert ours.transform(x[:7] + 0.01).shape == (7, 2)


def test_nndescent_everywhere_and_auto_from_the_exact_limit_search_approximately(monkeypatch):
    # not fitted: NN-descent is umap-learn's, and its numba compilation costs a fresh
    # process ~25 s (~75 s with a cold cache); what is ours is which search each case asks for
    monkeypatch.setattr(manifold, "EXACT_BELOW", 60)
    assert exact_neighbours(EvalConfig(umap_knn="auto"), 59)
    assert not exact_neighbours(EvalConfig(umap_knn="auto"), 60)  # at the limit: approximate
    assert not exact_neighbours(EvalConfig(umap_knn="nndescent"), 59)
    reducer = _umap(EvalConfig(), seed=0, n_train=60, precomputed=False)
    assert reducer.metric == "euclidean" and reducer.force_approximation_algorithm


def test_the_raw_floor_is_the_best_views_inputs_and_left_out_with_missing_views():
    views, labels = make_views(6, size=4)
    floor = raw_floor(MultiViewData(views, labels, "d"), best_view=1)
    assert list(floor) == ["raw_best"]
    assert torch.equal(floor["raw_best"], views[1].flatten(1))  # 6×16 pixels of view 1
    available = torch.ones(6, 2, dtype=torch.bool)
    available[0, 1] = False  # sample 0's view 1 is zeros, not data
    assert raw_floor(MultiViewData(views, labels, "d", available), best_view=0) == {}


def test_config_names_the_clustering_methods_and_checks_umap_settings():
    assert EvalConfig().clustering == ["kmeans", "umap"]  # the paper's first: the headline
    for bad, key in (
        ({"clustering": ["spectral"]}, "eval.clustering"),
        ({"clustering": ["umap", "umap"]}, "eval.clustering"),
        ({"umap_components": 1}, "eval.umap_components"),
        ({"umap_neighbors": 1}, "eval.umap_neighbors"),
        ({"umap_min_dist": 1.5}, "eval.umap_min_dist"),
        ({"umap_knn": "exact"}, "eval.umap_knn"),
    ):
        with pytest.raises(ConfigError, match=key):
            RunConfig.from_dict({"eval": bad})


def _rows(acc_kmeans: float, acc_umap: float, split: str) -> list[dict]:
    return [
        score_row("clustering", "C", "acc", split, [acc_kmeans]),
        score_row("clustering_umap", "C", "acc", split, [acc_umap]),
        score_row("clustering", "C+S_best", "acc", split, [acc_kmeans]),
        score_row("clustering_umap", "C+S_best", "acc", split, [acc_umap]),
        score_row("redundancy", "S_0", "r2_C_ridge", split, [0.1]),
    ]


def _write_run(path, mask_ratio: float, seed: int, kmeans: float, umap: float) -> None:
    path.mkdir(parents=True)
    scores = [row for split in ("val", "test") for row in _rows(kmeans, umap, split)]
    (path / "metrics.json").write_text(json.dumps({"scores": scores}))
    config = {"run": {"seed": seed}, "stage1": {"mask_ratio": mask_ratio}}
    (path / "config.json").write_text(json.dumps(config))


def test_find_score_reads_the_papers_kmeans_never_another_method():
    rows = _rows(0.6, 0.9, "val")
    assert find_score(rows, "val/C/acc") == pytest.approx(0.6)


def test_collect_and_ablate_keep_the_methods_in_their_own_columns_and_plots(tmp_path):
    runs = tmp_path / "sweep"
    for i, (ratio, seed, kmeans, umap) in enumerate(
        [(0.5, 0, 0.6, 0.9), (0.5, 1, 0.4, 0.8), (0.7, 0, 0.5, 0.7)]
    ):
        _write_run(runs / str(i), ratio, seed, kmeans, umap)

    table = collect([runs], tmp_path / "results")
    header = table.splitlines()[0]
    assert "clustering.C.acc" in header and "clustering_umap.C.acc" in header
    first_group = table.splitlines()[2]  # mask_ratio 0.5: kmeans 50 ± 10, umap 85 ± 5
    assert "| 50.00 ± 10.00 |" in first_group and "| 85.00 ± 5.00 |" in first_group

    text = ablate("mask_ratio", [runs], tmp_path / "ablation")
    assert "clustering_umap.C.acc" in text and "clustering.C.acc" in text
    for split in ("val", "test"):
        assert (tmp_path / "ablation" / f"ablation_mask_ratio_{split}.png").is_file()
        assert (tmp_path / "ablation" / f"ablation_mask_ratio_{split}_umap.png").is_file()
    csv_header = (tmp_path / "ablation" / "ablation_mask_ratio_val.csv").read_text().split("\n")[0]
    assert "clustering.C.acc mean" in csv_header and "clustering_umap.C.acc mean" in csv_header


def test_ablate_draws_no_umap_plot_for_runs_evaluated_without_it(tmp_path):
    runs = tmp_path / "sweep"
    for i, ratio in enumerate((0.5, 0.7)):
        _write_run(runs / str(i), ratio, 0, 0.5, 0.8)
        path = runs / str(i) / "metrics.json"
        metrics = json.loads(path.read_text())
        metrics["scores"] = [r for r in metrics["scores"] if r["task"] != "clustering_umap"]
        path.write_text(json.dumps(metrics))
    ablate("mask_ratio", [runs], tmp_path / "out")
    assert (tmp_path / "out" / "ablation_mask_ratio_val.png").is_file()
    assert not list((tmp_path / "out").glob("*_umap.png"))


def test_metrics_md_has_one_section_per_method_naming_split_and_seeds():
    rows = _rows(0.6, 0.9, "test")[:4]
    text = metrics_markdown(
        {"dataset": "d", "model": "mrdd", "stage": "all", "seed": 3, "scores": rows,
         "splits": {"test": 12},
         "methods": {"clustering": "KMeans.", "clustering_umap": "UMAP, then KMeans."},
         "skipped": {}}
    )  # fmt: skip
    kmeans = "## Clustering: kmeans, the paper's protocol (test split, 12 samples; "
    umap = "## Clustering: umap, UMAP fitted on train, then KMeans (test split, 12 samples; "
    seeds = "mean ± std over 1 runs, seed 3; %)"
    assert kmeans + seeds in text and umap + seeds in text
    assert text.index(kmeans) < text.index(umap)
    assert "| C | 60.00 ± 0.00 |" in text and "| C | 90.00 ± 0.00 |" in text


def test_a_umap_fit_leaves_torchs_threads_alone():
    """numba's OpenMP layer would reset the OpenMP runtime torch shares (and slow every
    later training step 17×); the umap method runs numba on its own thread pool."""
    import os

    import numba

    threads = torch.get_num_threads()
    x = torch.rand(60, 4, generator=torch.Generator().manual_seed(0))
    manifold_codes({"train": {"x": x}}, ["train"], ["x"], EvalConfig(umap_components=2), 0)
    assert torch.get_num_threads() == threads
    if "NUMBA_THREADING_LAYER" not in os.environ:
        assert numba.threading_layer() == "workqueue"


def test_metrics_md_says_how_each_umap_knn_finds_neighbours():
    from mrdd.config import UMAP_KNN
    from mrdd.eval.protocol import KNN_TEXTS, method_texts

    assert set(KNN_TEXTS) == set(UMAP_KNN)
    text = method_texts(EvalConfig())["clustering_umap"]
    assert "neighbours: exact below 4,096 train codes, NN-descent from there (auto)" in text
