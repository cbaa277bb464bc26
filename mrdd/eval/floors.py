"""Raw-feature floors: how well KMeans clusters a dataset's views before any learning.

A representation is only worth learning if its codes cluster better than the raw
features do, so every suite dataset (:mod:`mrdd.data.suite`) reports its floors, each the
KMeans scores of :func:`mrdd.eval.metrics.evaluate_clustering` (``k`` = number of classes,
``n_init=10``, ``n_seeds`` seeds) on the val and on the test split:

* ``concat``: every view flattened and concatenated;
* ``best_view``: the single view that clusters best on **val** (mean ACC), reported on
  val and test;

each under two scalings (:data:`SCALINGS`): ``standardised`` per feature with training
statistics, and ``as_loaded`` (the tensors the model trains on: images in [0, 1],
vector views as the loader standardised them). Per-pixel standardising multiplies the
rarely inked border pixels of digit images into noise, so on images the unscaled pixels
are the stronger baseline; a floor should be the strongest simple baseline, so
``floor`` is the one of the four with the highest val ACC. No choice looks at test.
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
#: How the views are scaled before KMeans (see the module's docstring).
SCALINGS = ("standardised", "as_loaded")


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


def _views(data: DatasetSplits, scaling: str) -> dict[str, list[np.ndarray]]:
    """The flattened views of val and test (``{split: [view, ...]}``) under ``scaling``."""
    flat = {name: _flat_views(data.split(name)) for name in ("train", *FLOOR_SPLITS)}
    if scaling == "as_loaded":
        return {split: flat[split] for split in FLOOR_SPLITS}
    scaled = [
        _standardised(train, *(flat[s][v] for s in FLOOR_SPLITS))
        for v, train in enumerate(flat["train"])
    ]
    return {split: [views[i] for views in scaled] for i, split in enumerate(FLOOR_SPLITS)}


def _floors(
    views: dict[str, list[np.ndarray]], labels: dict[str, np.ndarray], k: int, n_seeds: int
) -> dict[str, Any]:
    """The ``concat`` and ``best_view`` floors of one scaling's views."""
    concat = {s: _scores(np.hstack(views[s]), labels[s], k, n_seeds) for s in FLOOR_SPLITS}
    val = [_scores(x, labels["val"], k, n_seeds) for x in views["val"]]
    best = int(np.argmax([s["acc"]["mean"] for s in val]))
    return {
        "concat": concat,
        "best_view": {
            "view": best,
            "val_acc_per_view": [s["acc"]["mean"] for s in val],
            "val": val[best],
            "test": _scores(views["test"][best], labels["test"], k, n_seeds),
        },
    }


def raw_floors(data: DatasetSplits, n_seeds: int = 10) -> dict[str, Any]:
    """The floors of ``data`` (which needs a val split): ``{scaling: {"concat": {split:
    scores}, "best_view": {"view", "val_acc_per_view", split: scores}}, "floor": {"scaling",
    "kind", split: scores}, "n_seeds"}`` for every scaling of :data:`SCALINGS`, ``scores``
    being ``{score: {"mean", "std"}}`` for :data:`FLOOR_SCORES`."""
    if data.val is None:
        raise ValueError(f"{data.name}: floors need a val split (dataset.val_fraction > 0).")
    labels = {s: data.split(s).labels.cpu().numpy() for s in FLOOR_SPLITS}
    result: dict[str, Any] = {
        scaling: _floors(_views(data, scaling), labels, data.num_classes, n_seeds)
        for scaling in SCALINGS
    }
    candidates = [(scaling, kind) for scaling in SCALINGS for kind in ("concat", "best_view")]
    scaling, kind = max(candidates, key=lambda c: result[c[0]][c[1]]["val"]["acc"]["mean"])
    chosen = result[scaling][kind]
    result["floor"] = {"scaling": scaling, "kind": kind, **{s: chosen[s] for s in FLOOR_SPLITS}}
    result["n_seeds"] = n_seeds
    return result


def _cell(scores: dict[str, Any], key: str) -> str:
    return f"{100 * scores[key]['mean']:.1f} ± {100 * scores[key]['std']:.1f}"


def floors_markdown(datasets: dict[str, dict[str, Any]]) -> str:
    """The floors of several datasets (``{name: {"views": [...], "floors": raw_floors}}``)
    as a markdown table in percent, one row per dataset, scaling and floor; the chosen
    ``floor`` in bold."""
    columns = [f"{split} {key.upper()}" for split in FLOOR_SPLITS for key in FLOOR_SCORES]
    rows = [
        "| dataset | scaling | floor | " + " | ".join(columns) + " |",
        "|---" * (3 + len(columns)) + "|",
    ]
    for name, entry in datasets.items():
        floors = entry["floors"]
        for scaling in SCALINGS:
            best = floors[scaling]["best_view"]
            labels = {
                "concat": "concatenated",
                "best_view": f"best view: {entry['views'][best['view']]['name']}",
            }
            for kind, label in labels.items():
                scores = floors[scaling][kind]
                cells = [_cell(scores[s], key) for s in FLOOR_SPLITS for key in FLOOR_SCORES]
                if (floors["floor"]["scaling"], floors["floor"]["kind"]) == (scaling, kind):
                    cells = [f"**{c}**" for c in cells]
                rows.append(f"| {name} | {scaling} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def floor_summary_markdown(datasets: dict[str, dict[str, Any]]) -> str:
    """One row per dataset: its ``floor`` (the candidate chosen on val) in percent."""
    rows = [
        "| dataset | floor (chosen on val) | val ACC | test ACC | test NMI | test ARI |",
        "|---|---|---|---|---|---|",
    ]
    for name, entry in datasets.items():
        floor = entry["floors"]["floor"]
        what = "concatenated"
        if floor["kind"] == "best_view":
            view = entry["floors"][floor["scaling"]]["best_view"]["view"]
            what = f"best view: {entry['views'][view]['name']}"
        cells = [_cell(floor["val"], "acc"), *(_cell(floor["test"], k) for k in FLOOR_SCORES)]
        rows.append(f"| {name} | {floor['scaling']}, {what} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"
