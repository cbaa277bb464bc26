"""Raw-feature floors: how well KMeans clusters a dataset's views before any learning.

A representation is only worth learning if its codes cluster better than the raw
features do, so every suite dataset (:mod:`mrdd.data.suite`) reports two floors, each the
KMeans scores of :func:`mrdd.eval.metrics.evaluate_clustering` (``k`` = number of classes,
``n_init=10``, ``n_seeds`` seeds) on the val and on the test split:

* ``concat``: every view flattened, concatenated and standardised per feature;
* ``best_view``: the single standardised view that clusters best on **val** (mean ACC),
  reported on val and test; the choice never looks at test.

Standardisation statistics come from the training split only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mrdd.data.base import DatasetSplits, MultiViewData
from mrdd.eval.metrics import evaluate_clustering

#: The scores a floor reports (keys of :func:`mrdd.eval.metrics.clustering_scores`).
FLOOR_SCORES = ("acc", "nmi", "ari")
#: The splits a floor is reported on.
FLOOR_SPLITS = ("val", "test")


def _flat_views(split: MultiViewData) -> list[np.ndarray]:
    return [x.detach().cpu().reshape(len(x), -1).double().numpy() for x in split.views]


def _standardised(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """``others`` standardised per feature with ``train``'s mean and std (a constant
    feature is only centred)."""
    mean, std = train.mean(0), train.std(0)
    std = np.where(std > 1e-12 * (1.0 + np.abs(mean)), std, 1.0)
    return [(x - mean) / std for x in others]


def _scores(features: np.ndarray, labels: np.ndarray, k: int, n_seeds: int) -> dict[str, Any]:
    result = evaluate_clustering(features, labels, k, n_seeds=n_seeds)
    return {key: {s: result[key][s] for s in ("mean", "std")} for key in FLOOR_SCORES}


def raw_floors(data: DatasetSplits, n_seeds: int = 10) -> dict[str, Any]:
    """The ``concat`` and ``best_view`` floors of ``data`` (which needs a val split):
    ``{"concat": {split: scores}, "best_view": {"view", "val_acc_per_view", split: scores},
    "n_seeds"}``, ``scores`` being ``{score: {"mean", "std"}}`` for :data:`FLOOR_SCORES`."""
    if data.val is None:
        raise ValueError(f"{data.name}: floors need a val split (dataset.val_fraction > 0).")
    splits = {"train": data.train, "val": data.val, "test": data.test}
    flat = {name: _flat_views(split) for name, split in splits.items()}
    labels = {name: split.labels.cpu().numpy() for name, split in splits.items()}
    k = data.num_classes
    per_view = []
    for v in range(data.train.num_views):
        val, test = _standardised(flat["train"][v], flat["val"][v], flat["test"][v])
        per_view.append({"val": (val, labels["val"]), "test": (test, labels["test"])})
    concat = {split: np.hstack([view[split][0] for view in per_view]) for split in FLOOR_SPLITS}
    floors: dict[str, Any] = {
        "concat": {s: _scores(concat[s], labels[s], k, n_seeds) for s in FLOOR_SPLITS}
    }
    val_scores = [_scores(*view["val"], k, n_seeds) for view in per_view]
    best = int(np.argmax([s["acc"]["mean"] for s in val_scores]))
    floors["best_view"] = {
        "view": best,
        "val_acc_per_view": [s["acc"]["mean"] for s in val_scores],
        "val": val_scores[best],
        "test": _scores(*per_view[best]["test"], k, n_seeds),
    }
    floors["n_seeds"] = n_seeds
    return floors


def _cell(scores: dict[str, Any], key: str) -> str:
    return f"{100 * scores[key]['mean']:.1f} ± {100 * scores[key]['std']:.1f}"


def floors_markdown(datasets: dict[str, dict[str, Any]]) -> str:
    """The floors of several datasets (``{name: {"views": [...], "floors": raw_floors}}``)
    as a markdown table, one row per dataset, floor and split, scores in percent."""
    head = "| dataset | floor | split | ACC | NMI | ARI |\n|---|---|---|---|---|---|"
    rows = [head]
    for name, entry in datasets.items():
        floors = entry["floors"]
        best = floors["best_view"]
        labels = {
            "concat": "concatenated views",
            "best_view": f"best view: {entry['views'][best['view']]['name']}",
        }
        for floor, label in labels.items():
            for split in FLOOR_SPLITS:
                cells = " | ".join(_cell(floors[floor][split], key) for key in FLOOR_SCORES)
                rows.append(f"| {name} | {label} | {split} | {cells} |")
    return "\n".join(rows) + "\n"
