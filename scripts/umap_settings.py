"""Choose the umap clustering method's settings on val, across datasets.

python scripts/umap_settings.py                                 # the six suite datasets
python scripts/umap_settings.py --runs runs/a runs/b --out umap_settings.json

For every feature set, each setting of :data:`GRID` is fitted as the umap method fits it
in a run (:func:`mrdd.eval.manifold.manifold_codes`: standardised on train, UMAP fitted on
the train split, the val split mapped into it) and the val split clustered by the same
KMeans (``n_init=10``, ``--kmeans-seeds`` seeds). The feature sets are

* the raw floor (``raw_best``, the best view's raw inputs) of every development-suite
  dataset (``data/suite/<name>.npz``, built by ``scripts/make_suite.py``), and
* the learned codes of every ``--runs`` directory (``C``, and ``C+S_best`` where the run
  has stage 2), computed on that run's own data.

Only val is read: the choice must not look at test. Prints one Markdown table (val ACC,
%, mean over the KMeans seeds) with each setting's mean difference to the default across
the feature sets and its wins, and writes every number to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from torch import Tensor

import mrdd
from mrdd.config import EvalConfig
from mrdd.data import load_dataset
from mrdd.data.suite import SUITE
from mrdd.eval.manifold import manifold_codes
from mrdd.eval.metrics import evaluate_clustering
from mrdd.eval.representations import RAW_FLOOR, raw_floor

#: (n_components, n_neighbors, min_dist): the default first, then one change at a time.
GRID = ((10, 15, 0.0), (10, 5, 0.0), (10, 30, 0.0), (10, 15, 0.1), (2, 15, 0.0), (5, 15, 0.0))
SPLITS = ("train", "val")


def suite_features(name: str, data_root: Path) -> dict[str, dict[str, Tensor]]:
    """``{split: {"raw_best": N×d}}`` of a suite dataset's train and val splits."""
    splits = load_dataset({"name": "npz", "path": str(data_root / "suite" / f"{name}.npz")})
    features = {s: raw_floor(splits.split(s), 0) for s in SPLITS}  # view 0, as measured
    return {"features": features, "labels": splits.val.labels, "k": splits.num_classes}


def run_features(run_dir: Path) -> dict[str, object]:
    """The codes ``C`` (and ``C+S_best``) of a run's train and val splits, on its own data."""
    trained = mrdd.load(run_dir)
    splits = trained.load_data(trained.config.dataset)
    keep = ("C", "C+S_best")
    features = {}
    for split in SPLITS:
        reps = trained.representations(splits.split(split).views, prepared=True)
        features[split] = {name: reps[name] for name in keep if name in reps}
    return {"features": features, "labels": splits.val.labels, "k": splits.num_classes}


def val_acc(item: dict, setting: tuple[int, int, float], kmeans_seeds: int) -> dict[str, float]:
    """Val ACC of each representation of ``item`` under one UMAP setting (seed 0)."""
    components, neighbors, min_dist = setting
    ev = EvalConfig(umap_components=components, umap_neighbors=neighbors, umap_min_dist=min_dist)
    names = list(item["features"]["train"])
    embedded = manifold_codes(item["features"], ["val"], names, ev, seed=0)
    scores = {
        name: evaluate_clustering(embedded["val"][name], item["labels"], item["k"], kmeans_seeds)
        for name in names
    }
    return {name: result["acc"]["mean"] for name, result in scores.items()}


def markdown(table: dict[str, dict[str, float]]) -> str:
    """Settings as rows, feature sets as columns, plus the mean difference to the default
    (the first setting) and the number of feature sets where the setting beats it."""
    columns = list(next(iter(table.values())))
    default = next(iter(table.values()))
    lines = [
        "| n_components, n_neighbors, min_dist | " + " | ".join(columns) + " | Δ mean | wins |",
        "| :-- |" + " --: |" * (len(columns) + 2),
    ]
    for setting, row in table.items():
        deltas = [row[c] - default[c] for c in columns]
        cells = " | ".join(f"{100 * row[c]:.2f}" for c in columns)
        wins = sum(d > 0 for d in deltas)
        lines.append(f"| {setting} | {cells} | {100 * np.mean(deltas):+.2f} | {wins} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=list(SUITE), help="suite datasets")
    parser.add_argument("--runs", nargs="*", type=Path, default=[], help="run directories")
    parser.add_argument("--data-root", type=Path, default=Path("data"))
    parser.add_argument("--kmeans-seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("umap_settings.json"))
    args = parser.parse_args(argv)
    if args.out.exists():
        print(f"error: {args.out} exists; pass --out <new file>.", file=sys.stderr)
        return 2
    items = {f"{name}/{RAW_FLOOR}": suite_features(name, args.data_root) for name in args.datasets}
    for run_dir in args.runs:
        items[str(run_dir)] = run_features(run_dir)
    table: dict[str, dict[str, float]] = {}
    start = time.process_time()
    for setting in GRID:
        row = {}
        for label, item in items.items():
            for name, acc in val_acc(item, setting, args.kmeans_seeds).items():
                row[label if label.endswith(RAW_FLOOR) else f"{label}/{name}"] = acc
        table[", ".join(map(str, setting))] = row
        print(f"[umap_settings] {setting} done ({time.process_time() - start:.0f} CPU-s)")
    args.out.write_text(json.dumps({"split": "val", "umap_seed": 0, "table": table}, indent=2))
    print(markdown(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
