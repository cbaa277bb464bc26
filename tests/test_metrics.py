"""Tests of mrdd.eval.metrics on labellings and data whose answers are known."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from mrdd.eval.metrics import (
    cluster_accuracy,
    clustering_scores,
    evaluate_classification,
    evaluate_clustering,
    pairwise_fscore,
    purity,
    redundancy_r2,
    summarize,
)

SCORE_KEYS = {"acc", "nmi", "ari", "fscore", "purity"}
SUMMARY_KEYS = {"mean", "std", "runs"}


def test_permuted_labelling_is_perfect():
    true = np.array([0, 0, 1, 1, 2, 2, 2])
    pred = np.array([2, 2, 0, 0, 1, 1, 1])  # same partition, cluster ids renamed
    assert cluster_accuracy(true, pred) == 1.0
    assert purity(true, pred) == 1.0
    assert pairwise_fscore(true, pred) == 1.0
    scores = clustering_scores(true, pred)
    assert set(scores) == SCORE_KEYS
    assert scores["nmi"] == pytest.approx(1.0)
    assert scores["ari"] == pytest.approx(1.0)


def test_hand_computed_example():
    # true [0,0,0,1,1,1], pred [0,0,1,1,1,1]. Contingency (rows class, cols cluster):
    #   class 0: [2, 1]; class 1: [0, 3]
    # ACC: map cluster 0->class 0, 1->1: (2 + 3) / 6 = 5/6.
    # Purity: cluster 0 majority 2, cluster 1 majority 3: 5/6.
    # Pairs together in both: C(2,2)+C(1,2)+C(0,2)+C(3,2) = 1+0+0+3 = 4.
    # Same-cluster pairs: C(2,2)+C(4,2) = 1+6 = 7 -> precision 4/7.
    # Same-class pairs:   C(3,2)+C(3,2) = 3+3 = 6 -> recall 4/6 = 2/3.
    # F = 2 (4/7)(2/3) / (4/7 + 2/3) = (16/21) / (26/21) = 8/13.
    true = [0, 0, 0, 1, 1, 1]
    pred = [0, 0, 1, 1, 1, 1]
    assert cluster_accuracy(true, pred) == pytest.approx(5 / 6)
    assert purity(true, pred) == pytest.approx(5 / 6)
    assert pairwise_fscore(true, pred) == pytest.approx(8 / 13)


def test_pairwise_fscore_matches_brute_force_pair_count():
    rng = np.random.default_rng(0)
    true = rng.integers(0, 4, 60)
    pred = rng.integers(0, 5, 60)
    tp = fp = fn = 0
    for i, j in itertools.combinations(range(60), 2):
        same_class, same_cluster = true[i] == true[j], pred[i] == pred[j]
        tp += same_class and same_cluster
        fp += same_cluster and not same_class
        fn += same_class and not same_cluster
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    expected = 2 * precision * recall / (precision + recall)
    assert pairwise_fscore(true, pred) == pytest.approx(expected)


def test_nmi_and_ari_equal_sklearn():
    rng = np.random.default_rng(1)
    true = rng.integers(0, 5, 200)
    pred = np.where(rng.random(200) < 0.7, true, rng.integers(0, 5, 200))
    scores = clustering_scores(torch.as_tensor(true), torch.as_tensor(pred))
    assert scores["nmi"] == pytest.approx(normalized_mutual_info_score(true, pred))
    assert scores["ari"] == pytest.approx(adjusted_rand_score(true, pred))


def test_accuracy_with_more_or_fewer_clusters_than_classes():
    # 4 clusters for 2 classes: only 2 clusters can be matched, 1 sample each.
    true, pred = [0, 0, 1, 1], [0, 1, 2, 3]
    assert cluster_accuracy(true, pred) == pytest.approx(0.5)
    assert purity(true, pred) == 1.0  # purity rewards over-clustering; ACC does not
    # 3 clusters for 2 classes: clusters 0->0, 2->1 matched; cluster 1 (2 samples) wrong.
    assert cluster_accuracy([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2]) == pytest.approx(4 / 6)
    # 1 cluster for 3 classes: only one class can be right.
    assert cluster_accuracy([0, 1, 2], [5, 5, 5]) == pytest.approx(1 / 3)


def test_summarize_uses_population_std():
    s = summarize([1.0, 3.0])
    assert s == {"mean": 2.0, "std": 1.0, "runs": [1.0, 3.0]}
    with pytest.raises(ValueError, match="at least one value"):
        summarize([])


def test_evaluate_clustering_on_separated_blobs():
    x, y = make_blobs(n_samples=150, centers=3, cluster_std=0.3, random_state=0)
    result = evaluate_clustering(torch.as_tensor(x, dtype=torch.float32), y, 3, n_seeds=3)
    assert set(result) == SCORE_KEYS | {"n_runs"}
    assert result["n_runs"] == 3
    for key in SCORE_KEYS:
        assert set(result[key]) == SUMMARY_KEYS
        assert len(result[key]["runs"]) == 3
    assert result["acc"]["mean"] == pytest.approx(1.0)
    assert result["nmi"]["mean"] == pytest.approx(1.0)


def test_evaluate_classification_on_separable_data():
    x, y = make_blobs(n_samples=300, centers=3, n_features=5, cluster_std=1.0, random_state=0)
    result = evaluate_classification((x[:200], y[:200]), (x[200:], y[200:]), n_seeds=3)
    assert set(result) == {"svm", "linear", "n_runs"}
    assert result["n_runs"] == 3
    for name in ("svm", "linear"):
        assert set(result[name]) == {"accuracy", "precision_macro", "f1_macro"}
        for summary in result[name].values():
            assert set(summary) == SUMMARY_KEYS
            assert len(summary["runs"]) == 3
        assert result[name]["accuracy"]["mean"] > 0.95
    again = evaluate_classification((x[:200], y[:200]), (x[200:], y[200:]), n_seeds=3)
    assert again == result  # seeded subsamples make the evaluation reproducible
    only_linear = evaluate_classification(
        (x[:200], y[:200]), (x[200:], y[200:]), n_seeds=1, classifiers=("linear",)
    )
    assert set(only_linear) == {"linear", "n_runs"}


@pytest.mark.parametrize("regressor", ["ridge", "mlp"])
def test_redundancy_r2_detects_contained_and_independent_targets(regressor):
    rng = np.random.default_rng(0)
    target = rng.normal(size=(400, 3))
    contained = np.hstack([target, rng.normal(size=(400, 5))])
    assert redundancy_r2(contained, target, regressor=regressor) > 0.9
    independent = rng.normal(size=(400, 8))
    assert abs(redundancy_r2(independent, target, regressor=regressor)) < 0.1


def test_input_validation_messages():
    with pytest.raises(ValueError, match="same number of samples, got 3 and 2"):
        cluster_accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="labels_true is empty"):
        purity([], [])
    with pytest.raises(ValueError, match="labels_pred must be a 1-D"):
        pairwise_fscore([0, 1], [[0], [1]])
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match="features contains NaN"):
        evaluate_clustering(np.array([[0.0, np.nan], [1.0, 1.0]]), [0, 1], 2)
    with pytest.raises(ValueError, match="features must be a 2-D"):
        evaluate_clustering(np.zeros(4), [0, 1, 0, 1], 2)
    with pytest.raises(ValueError, match="num_classes"):
        evaluate_clustering(x, [0, 1, 0, 1], 5)
    with pytest.raises(ValueError, match="n_seeds"):
        evaluate_clustering(x, [0, 1, 0, 1], 2, n_seeds=0)
    with pytest.raises(ValueError, match="feature dimension"):
        evaluate_classification((x, [0, 1, 0, 1]), (np.zeros((2, 3)), [0, 1]))
    with pytest.raises(ValueError, match="single class"):
        evaluate_classification((x, [0, 0, 0, 0]), (x, [0, 0, 0, 0]))
    with pytest.raises(ValueError, match="classifiers"):
        evaluate_classification((x, [0, 1, 0, 1]), (x, [0, 1, 0, 1]), classifiers=("knn",))
    with pytest.raises(ValueError, match="regressor must be one of"):
        redundancy_r2(np.zeros((20, 2)), np.zeros((20, 1)), regressor="forest")
    with pytest.raises(ValueError, match="test_fraction"):
        redundancy_r2(np.zeros((20, 2)), np.zeros((20, 1)), test_fraction=1.0)
    with pytest.raises(ValueError, match="target contains NaN"):
        redundancy_r2(np.zeros((20, 2)), np.full((20, 1), np.inf))


@pytest.mark.filterwarnings("error")
def test_redundancy_r2_accepts_a_single_target_column_without_warnings():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(400, 1))
    source = np.hstack([target, rng.normal(size=(400, 2))])
    assert redundancy_r2(source, target, regressor="mlp") > 0.9


def test_evaluate_classification_keeps_a_class_with_one_training_sample():
    x, y = make_blobs(n_samples=60, centers=2, cluster_std=0.5, random_state=0)
    train_x, train_y = np.vstack([x[:40], [[50.0, 50.0]]]), np.append(y[:40], 2)
    result = evaluate_classification(
        (train_x, train_y), (x[40:], y[40:]), n_seeds=2, classifiers=("linear",)
    )
    assert result["linear"]["accuracy"]["mean"] > 0.95
