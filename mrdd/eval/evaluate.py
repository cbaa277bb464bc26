"""Score named representations and package the numbers with what produced them.

Every report carries the split(s), the number of repetitions R and a short
description of the method next to its numbers, so no reported figure is ever
separated from how it was made (the schema is documented in the README).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from torch import Tensor

from mrdd.eval.metrics import (
    CLASSIFICATION_SUBSAMPLE,
    evaluate_classification,
    evaluate_clustering,
    redundancy_r2,
    summarize,
)

log = logging.getLogger("mrdd")

#: Held-out share of the samples in each redundancy regression run.
REDUNDANCY_TEST_FRACTION = 0.25


def mlp_skip_reason(n_samples: int) -> str | None:
    """Why the MLP regressor cannot run on ``n_samples`` samples, or ``None`` if it can.

    ``MLPRegressor(early_stopping=True)`` validates on 10% (rounded up) of its
    fitting samples and refuses fewer than 2, i.e. fewer than 11 fitting samples.
    """
    n_fit = n_samples - math.ceil(REDUNDANCY_TEST_FRACTION * n_samples)
    if math.ceil(0.1 * n_fit) >= 2:
        return None
    return (
        f"{n_samples} samples leave {n_fit} for fitting; the MLP needs at least 11 "
        "(10% of them validate its early stopping)"
    )


def clustering_report(
    representations: dict[str, Tensor],
    labels: Tensor,
    num_classes: int,
    split: str,
    n_seeds: int,
    seed: int = 0,
) -> dict[str, Any]:
    """KMeans clustering scores (mean ± std over ``n_seeds`` runs) of every representation."""
    results = {}
    for name, features in representations.items():
        scores = evaluate_clustering(features, labels, num_classes, n_seeds=n_seeds, seed=seed)
        results[name] = scores
        log.info(
            "clustering %-9s (%s split, %d KMeans runs): ACC %.4f ± %.4f  NMI %.4f  ARI %.4f",
            name,
            split,
            n_seeds,
            scores["acc"]["mean"],
            scores["acc"]["std"],
            scores["nmi"]["mean"],
            scores["ari"]["mean"],
        )
    return {
        "split": split,
        "n_samples": int(labels.shape[0]),
        "n_runs": n_seeds,
        "method": "KMeans(k=num_classes, n_init=10), one run per seed",
        "representations": results,
    }


def classification_report(
    train: dict[str, Tensor],
    train_labels: Tensor,
    test: dict[str, Tensor],
    test_labels: Tensor,
    classifiers: list[str],
    n_seeds: int,
    seed: int = 0,
) -> dict[str, Any]:
    """Probe classifiers fitted on the train representations and scored on the test ones.

    Run ``r`` fits on a stratified random share of the training samples (seed
    ``seed + r``), so the std is the sensitivity to the training sample.
    """
    results = {}
    for name, features in train.items():
        scores = evaluate_classification(
            features, train_labels, test[name], test_labels, n_seeds, seed, classifiers
        )
        results[name] = scores
        log.info(
            "classification %-9s (fit train, score test, %d runs): %s",
            name,
            n_seeds,
            "  ".join(
                f"{c} acc {scores[c]['accuracy']['mean']:.4f} ± {scores[c]['accuracy']['std']:.4f}"
                for c in classifiers
            ),
        )
    return {
        "fit_split": "train",
        "score_split": "test",
        "n_train": int(train_labels.shape[0]),
        "n_test": int(test_labels.shape[0]),
        "n_runs": n_seeds,
        "classifiers": list(classifiers),
        "method": (
            f"StandardScaler + SVC(rbf) ('svm') or LogisticRegression ('linear'), fitted on a "
            f"stratified {CLASSIFICATION_SUBSAMPLE:.0%} subsample of train per run"
        ),
        "representations": results,
    }


def _r2_runs(
    source: Tensor, target: np.ndarray | Tensor, regressor: str, n_seeds: int, seed: int
) -> dict[str, Any]:
    return summarize(
        [
            redundancy_r2(source, target, seed + r, REDUNDANCY_TEST_FRACTION, regressor=regressor)
            for r in range(n_seeds)
        ]
    )


def redundancy_report(
    c: Tensor,
    specific: dict[str, Tensor],
    labels: Tensor,
    num_classes: int,
    club: dict[str, float],
    split: str,
    regressors: list[str],
    n_seeds: int,
    seed: int = 0,
) -> dict[str, Any]:
    """How much of ``C`` each ``S_v`` still carries, and how much of the labels, for context.

    For every ``S_v``: the held-out R² of predicting ``C`` from it (``r2.C``), the
    held-out R² of predicting the one-hot labels from it (``r2.labels``), each for
    every regressor as mean ± std over ``n_seeds`` random held-out splits, and the
    trained CLUB estimator's bound on ``I(s_v; c)`` (``club``, nats, on all samples
    of the split). ``C`` gets ``r2.labels`` too, as the reference for how much
    label information a code can carry. One-hot R² rather than probe accuracy, so
    that both targets are measured by the same regressors and protocol. A regressor
    the split is too small for is left out and named, with the reason, in ``skipped``.
    """
    n_samples = int(labels.shape[0])
    skipped = {}
    if "mlp" in regressors and (reason := mlp_skip_reason(n_samples)):
        log.warning("redundancy: MLP regressor skipped on the %s split: %s", split, reason)
        skipped["mlp"] = reason
    regressors = [r for r in regressors if r not in skipped]
    onehot = np.eye(num_classes)[labels.cpu().numpy()]
    representations: dict[str, Any] = {}
    for name, s in specific.items():
        entry = {
            "r2": {
                "C": {reg: _r2_runs(s, c, reg, n_seeds, seed) for reg in regressors},
                "labels": {reg: _r2_runs(s, onehot, reg, n_seeds, seed) for reg in regressors},
            },
            "club": club[name],
        }
        representations[name] = entry
        log.info(
            "redundancy %-4s (%s split, %d runs): CLUB %.4f  %s",
            name,
            split,
            n_seeds,
            entry["club"],
            "  ".join(f"R²(C) {reg} {entry['r2']['C'][reg]['mean']:.4f}" for reg in regressors),
        )
    representations["C"] = {
        "r2": {"labels": {reg: _r2_runs(c, onehot, reg, n_seeds, seed) for reg in regressors}}
    }
    return {
        "split": split,
        "n_samples": n_samples,
        "n_runs": n_seeds,
        "test_fraction": REDUNDANCY_TEST_FRACTION,
        "regressors": regressors,
        "skipped": skipped,
        "method": (
            "held-out R² (variance-weighted) of RidgeCV ('ridge') or MLPRegressor(128) ('mlp') "
            "on standardised inputs/targets, one random held-out split per run; CLUB: the "
            "trained estimator's I_CLUB(s_v; c) over all pairs of the split"
        ),
        "representations": representations,
    }
