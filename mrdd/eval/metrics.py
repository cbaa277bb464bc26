"""Scores for learned representations: clustering, classification, redundancy.

These are the numbers docs/method.md ("Evaluation protocol") asks every run to report. They work on
plain arrays (numpy, or torch tensors that are converted first), never on
models, so the same code scores ``C``, ``S_v`` and their concatenations, and
can be tested on synthetic data whose answer is known.

Every repeated evaluation returns a summary ``{"mean", "std", "runs"}`` per
score so that a reported mean always travels with its spread and raw runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.compose import TransformedTargetRegressor
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import (
    accuracy_score,
    adjusted_rand_score,
    f1_score,
    normalized_mutual_info_score,
    precision_score,
    r2_score,
)
from sklearn.metrics.cluster import contingency_matrix
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

# The method names are the config's, which checks eval.classifiers / eval.regressors.
from mrdd.config import CLASSIFIERS, REGRESSORS
from mrdd.data.base import stratified_holdout

#: Anything the scores accept: numpy arrays, array-likes, or torch tensors.
ArrayOrTensor = npt.ArrayLike | torch.Tensor

#: Share of each class kept in one classification run; the runs differ by which
#: training samples are left out (see :func:`evaluate_classification`).
CLASSIFICATION_SUBSAMPLE = 0.9

#: Held-out share of the samples in each redundancy regression run (:func:`redundancy_r2`).
REDUNDANCY_TEST_FRACTION = 0.25

#: Ridge penalties searched by efficient leave-one-out CV: a fixed penalty would
#: over- or under-regularise depending on the representation's dimension.
RIDGE_ALPHAS = np.logspace(-3, 3, 13)


def _to_numpy(x: ArrayOrTensor) -> np.ndarray:
    """Detach and move torch tensors to host memory; pass array-likes to numpy."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.dtype == torch.bfloat16:  # numpy has no bfloat16
            x = x.float()
        return x.numpy()
    return np.asarray(x)


def _labels(y: ArrayOrTensor, name: str) -> np.ndarray:
    """A non-empty 1-D label vector, or a ValueError naming ``name``."""
    y = _to_numpy(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D vector of labels, got shape {y.shape}.")
    if y.size == 0:
        raise ValueError(f"{name} is empty; at least one sample is needed.")
    return y


def _features(x: ArrayOrTensor, name: str) -> np.ndarray:
    """A non-empty, finite ``N×d`` float matrix, or a ValueError naming ``name``."""
    x = _to_numpy(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D N×d matrix of features, got shape {x.shape}.")
    if x.size == 0:
        raise ValueError(f"{name} is empty (shape {x.shape}); at least one sample is needed.")
    x = x.astype(np.float64, copy=False)
    if not np.isfinite(x).all():
        raise ValueError(
            f"{name} contains NaN or infinite values; check the model that produced it."
        )
    return x


def _same_length(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Samples must be aligned one-to-one; a length mismatch means they are not."""
    if len(a) != len(b):
        raise ValueError(
            f"{name_a} and {name_b} must have the same number of samples, "
            f"got {len(a)} and {len(b)}."
        )


def _label_pair(labels_true: ArrayOrTensor, labels_pred: ArrayOrTensor) -> np.ndarray:
    """Validate two labellings and return their class × cluster contingency table."""
    t = _labels(labels_true, "labels_true")
    p = _labels(labels_pred, "labels_pred")
    _same_length(t, p, "labels_true", "labels_pred")
    return contingency_matrix(t, p)


def _n_seeds(n_seeds: int) -> None:
    if n_seeds < 1:
        raise ValueError(f"n_seeds must be at least 1, got {n_seeds}.")


def summarize(values: Sequence[float] | ArrayOrTensor) -> dict[str, Any]:
    """Mean, population std (ddof=0) and the raw runs of repeated scores.

    The runs are kept so that later readers can recompute any other statistic;
    ddof=0 matches how multi-view clustering papers report "mean ± std".
    """
    runs = _to_numpy(values).astype(np.float64).ravel()
    if runs.size == 0:
        raise ValueError("summarize needs at least one value, got none.")
    return {"mean": float(runs.mean()), "std": float(runs.std()), "runs": runs.tolist()}


def cluster_accuracy(labels_true: ArrayOrTensor, labels_pred: ArrayOrTensor) -> float:
    """Accuracy under the best one-to-one map from clusters to classes.

    Cluster ids are arbitrary, so they are matched to classes by the Hungarian
    algorithm on the contingency table. The table may be rectangular: with more
    clusters than classes (or fewer) the unmatched clusters' samples count as
    errors, so over-clustering is not rewarded (unlike :func:`purity`).
    """
    table = _label_pair(labels_true, labels_pred)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / table.sum())


def purity(labels_true: ArrayOrTensor, labels_pred: ArrayOrTensor) -> float:
    """Share of samples that belong to their cluster's majority class.

    Reported alongside ACC because multi-view clustering papers do; note that it
    reaches 1.0 trivially when every sample is its own cluster.
    """
    table = _label_pair(labels_true, labels_pred)
    return float(table.max(axis=0).sum() / table.sum())


def pairwise_fscore(labels_true: ArrayOrTensor, labels_pred: ArrayOrTensor) -> float:
    """Pair-counting F-measure, the "F-score" of multi-view clustering papers.

    A pair of samples is a true positive when it shares both a cluster and a
    class. Precision = true-positive pairs / same-cluster pairs, recall =
    true-positive pairs / same-class pairs, F = their harmonic mean. All pair
    counts come from the contingency table (``Σ C(n, 2)`` over cells, columns,
    rows), so the cost is linear in the number of samples. Returns 0.0 when no
    pair is a true positive (including when there are no pairs at all).
    """
    table = _label_pair(labels_true, labels_pred).astype(np.int64)

    def pairs(counts: np.ndarray) -> int:
        return int((counts * (counts - 1) // 2).sum())

    together = pairs(table)
    if together == 0:
        return 0.0
    precision = together / pairs(table.sum(axis=0))
    recall = together / pairs(table.sum(axis=1))
    return float(2 * precision * recall / (precision + recall))


def clustering_scores(labels_true: ArrayOrTensor, labels_pred: ArrayOrTensor) -> dict[str, float]:
    """All clustering scores of one labelling: acc, nmi, ari, fscore, purity."""
    t = _labels(labels_true, "labels_true")
    p = _labels(labels_pred, "labels_pred")
    _same_length(t, p, "labels_true", "labels_pred")
    return {
        "acc": cluster_accuracy(t, p),
        "nmi": float(normalized_mutual_info_score(t, p)),
        "ari": float(adjusted_rand_score(t, p)),
        "fscore": pairwise_fscore(t, p),
        "purity": purity(t, p),
    }


def evaluate_clustering(
    features: ArrayOrTensor,
    labels: ArrayOrTensor,
    num_classes: int,
    n_seeds: int = 10,
    seed: int = 0,
) -> dict[str, Any]:
    """KMeans clustering scores over ``n_seeds`` seeds (docs/method.md, "Evaluation protocol").

    Run ``r`` clusters the raw features with ``KMeans(k=num_classes, n_init=10,
    random_state=seed + r)``; KMeans depends on its initialisation, so one run
    would hide how stable the representation's cluster structure is.

    Returns ``{score: {"mean", "std", "runs"}}`` for every key of
    :func:`clustering_scores`, plus ``"n_runs"``.
    """
    x = _features(features, "features")
    y = _labels(labels, "labels")
    _same_length(x, y, "features", "labels")
    if not 1 <= num_classes <= len(x):
        raise ValueError(
            f"num_classes must be between 1 and the number of samples ({len(x)}), "
            f"got {num_classes}."
        )
    _n_seeds(n_seeds)
    runs = [
        clustering_scores(
            y,
            KMeans(n_clusters=num_classes, n_init=10, random_state=seed + r).fit_predict(x),
        )
        for r in range(n_seeds)
    ]
    result: dict[str, Any] = {key: summarize([run[key] for run in runs]) for key in runs[0]}
    result["n_runs"] = n_seeds
    return result


def _check_classifiers(classifiers: Sequence[str]) -> None:
    unknown = [name for name in classifiers if name not in CLASSIFIERS]
    if unknown or not classifiers:
        raise ValueError(
            f"classifiers must be a non-empty selection of {CLASSIFIERS}, got {tuple(classifiers)}."
        )


def _probe_subsample(labels: np.ndarray, seed: int) -> np.ndarray:
    """Sorted indices of one probe run's training samples: a stratified
    :data:`CLASSIFICATION_SUBSAMPLE` of them, the rest held out by the one stratified
    sampler (:func:`mrdd.data.base.stratified_holdout`), so every class keeps a sample."""
    kept, _ = stratified_holdout(torch.as_tensor(labels), 1 - CLASSIFICATION_SUBSAMPLE, seed)
    return kept.numpy()


def _classifier(name: str) -> Any:
    """A fresh, unfitted classifier that standardises features on its training data."""
    model = SVC(kernel="rbf") if name == "svm" else LogisticRegression(max_iter=1000)
    return make_pipeline(StandardScaler(), model)


def _probe_data(
    train: tuple[ArrayOrTensor, ArrayOrTensor], test: tuple[ArrayOrTensor, ArrayOrTensor]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The probes' ``(train_x, train_y, test_x, test_y)`` as arrays, checked for shapes and
    for at least two training classes."""
    xtr, ytr = _features(train[0], "train_x"), _labels(train[1], "train_y")
    xte, yte = _features(test[0], "test_x"), _labels(test[1], "test_y")
    _same_length(xtr, ytr, "train_x", "train_y")
    _same_length(xte, yte, "test_x", "test_y")
    if xtr.shape[1] != xte.shape[1]:
        raise ValueError(
            f"train_x and test_x must have the same feature dimension, "
            f"got {xtr.shape[1]} and {xte.shape[1]}."
        )
    if len(np.unique(ytr)) < 2:
        raise ValueError("train_y holds a single class; a classifier needs at least two.")
    return xtr, ytr, xte, yte


def evaluate_classification(
    train: tuple[ArrayOrTensor, ArrayOrTensor],
    test: tuple[ArrayOrTensor, ArrayOrTensor],
    n_seeds: int = 10,
    seed: int = 0,
    classifiers: Sequence[str] = CLASSIFIERS,
) -> dict[str, Any]:
    """Probe classifiers trained on train representations, scored on test ones.

    ``"svm"`` is ``SVC(kernel="rbf")`` and ``"linear"`` is
    ``LogisticRegression(max_iter=1000)``; each sees features standardised by a
    ``StandardScaler`` fitted on its training samples only, so no test statistic
    leaks into the probe.

    Both classifiers are deterministic given their data, so repeating them with
    different random states would give R identical numbers. Instead, run ``r``
    fits on a stratified random 90% subsample of the training set drawn with
    seed ``seed + r`` (:func:`mrdd.data.base.stratified_holdout` holds out the other
    10%, at least one sample, never a class's last) and is scored on the full test
    set; the spread over runs is therefore the sensitivity to the training sample.

    ``train`` and ``test``: ``(features N×d, labels N)`` each. Returns, per classifier
    name, ``{"accuracy", "precision_macro", "f1_macro"}`` each as ``{"mean", "std",
    "runs"}``, plus ``"n_runs"``.
    """
    xtr, ytr, xte, yte = _probe_data(train, test)
    _check_classifiers(classifiers)
    _n_seeds(n_seeds)

    scores: dict[str, dict[str, list[float]]] = {
        name: {"accuracy": [], "precision_macro": [], "f1_macro": []} for name in classifiers
    }
    for r in range(n_seeds):
        idx = _probe_subsample(ytr, seed + r)
        for name in classifiers:
            pred = _classifier(name).fit(xtr[idx], ytr[idx]).predict(xte)
            scores[name]["accuracy"].append(accuracy_score(yte, pred))
            scores[name]["precision_macro"].append(
                precision_score(yte, pred, average="macro", zero_division=0)
            )
            scores[name]["f1_macro"].append(f1_score(yte, pred, average="macro", zero_division=0))

    result: dict[str, Any] = {
        name: {metric: summarize(runs) for metric, runs in per_metric.items()}
        for name, per_metric in scores.items()
    }
    result["n_runs"] = n_seeds
    return result


def redundancy_r2(
    source: ArrayOrTensor,
    target: ArrayOrTensor,
    seed: int = 0,
    test_fraction: float = REDUNDANCY_TEST_FRACTION,
    regressor: str = "ridge",
) -> float:
    """Held-out R² of predicting ``target`` (N×d) from ``source`` (N×k).

    This measures how much of the consistent representation ``C`` a
    view-specific ``S_v`` still carries, the redundancy MRDD exists to shrink.
    A seeded random ``test_fraction`` of the samples is held out; the regressor
    is fitted on the rest with standardised inputs and targets (targets are
    mapped back before scoring). ``"ridge"`` is ``RidgeCV`` over
    :data:`RIDGE_ALPHAS` (linear redundancy); ``"mlp"`` is
    ``MLPRegressor(hidden_layer_sizes=(128,), max_iter=500, early_stopping=True)``
    (non-linear redundancy). The score is ``r2_score(...,
    multioutput="variance_weighted")``, i.e. the share of the target's total
    held-out variance explained: near 1 when ``source`` contains ``target``,
    near 0 (possibly slightly negative) when they are independent.

    The MLP holds out 10% of the fitting samples for early stopping; with only a
    few hundred samples that split is noisy and the MLP may stop after a few
    epochs, underestimating non-linear redundancy. Use thousands of samples
    (e.g. a whole split) when the MLP score matters.
    """
    x = _features(source, "source")
    y = _features(target, "target")
    _same_length(x, y, "source", "target")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}.")
    n_test = int(np.ceil(test_fraction * len(x)))
    if n_test < 2 or len(x) - n_test < 2:
        raise ValueError(
            f"redundancy_r2 needs at least 2 fitting and 2 held-out samples; with "
            f"{len(x)} samples and test_fraction={test_fraction} there are "
            f"{len(x) - n_test} and {n_test}."
        )
    if regressor == "ridge":
        model = RidgeCV(alphas=RIDGE_ALPHAS)
    elif regressor == "mlp":
        model = MLPRegressor(
            hidden_layer_sizes=(128,), max_iter=500, early_stopping=True, random_state=seed
        )
    else:
        raise ValueError(f"regressor must be one of {REGRESSORS}, got {regressor!r}.")

    if y.shape[1] == 1:  # sklearn regressors warn on a single-column target
        y = y[:, 0]
    x_fit, x_test, y_fit, y_test = train_test_split(x, y, test_size=n_test, random_state=seed)
    fitted = TransformedTargetRegressor(
        regressor=make_pipeline(StandardScaler(), model), transformer=StandardScaler()
    ).fit(x_fit, y_fit)
    return float(r2_score(y_test, fitted.predict(x_test), multioutput="variance_weighted"))
