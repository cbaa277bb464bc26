"""Score named representations and package the numbers with what produced them."""

from __future__ import annotations

import logging
from typing import Any

from torch import Tensor

from mrdd.eval.metrics import evaluate_clustering

log = logging.getLogger("mrdd")


def clustering_report(
    representations: dict[str, Tensor],
    labels: Tensor,
    num_classes: int,
    split: str,
    n_seeds: int,
    seed: int = 0,
) -> dict[str, Any]:
    """KMeans clustering scores (mean ± std over ``n_seeds`` runs) of every representation.

    The split and the number of runs travel with the numbers, so no reported
    figure is separated from how it was made.
    """
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
